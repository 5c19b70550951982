/**
 * Every error tvlens raises on purpose is a TvlensError. The message is one line that says what was
 * wrong, where, and what would have been valid; the CLI prints it as it is and exits non-zero.
 */
export class TvlensError extends Error {
  override name = 'TvlensError';
}

/** A graph that cannot be built or written: a shape mismatch, a dangling input, a duplicate name. */
export class GraphError extends TvlensError {
  override name = 'GraphError';
  constructor(
    message: string,
    readonly node?: string,
  ) {
    super(node ? `${node}: ${message}` : message);
  }
}

/** Two shapes that do not fit together. The message quotes both and names the node. */
export class ShapeError extends GraphError {
  override name = 'ShapeError';
}

/** A gradient that cannot be built: no rule for an op, or a parameter that is not a float. */
export class GradientError extends TvlensError {
  override name = 'GradientError';
}

/** A config file or option that is unknown, ill-typed or out of range. */
export class ConfigError extends TvlensError {
  override name = 'ConfigError';
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(key ? `${key}: ${message}` : message);
  }
}

/** ONNX Runtime could not do what was asked: an unknown execution provider, a model it refuses. */
export class RuntimeSetupError extends TvlensError {
  override name = 'RuntimeSetupError';
}

/** Input data that does not fit: a file that is not what it claims, a prompt longer than the context. */
export class InputError extends TvlensError {
  override name = 'InputError';
}

/** A layer, position or head outside the model or the prompt; the message gives the valid range. */
export class RangeInputError extends InputError {
  override name = 'RangeInputError';
}

/** Words for the errno codes that a user's path can cause. */
const FS_CODES: Readonly<Record<string, string>> = {
  EEXIST: 'it already exists',
  EISDIR: 'it is a folder, not a file',
  ENOTDIR: 'a part of the path is a file, not a folder',
  ENOENT: 'no such file or folder',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  EFBIG: 'the file is too large',
  EBUSY: 'the file or folder is busy',
  ENOTEMPTY: 'the folder is not empty',
  EXDEV: 'a rename across file systems',
};

export const describeFsCode = (code: string | undefined): string => (code && FS_CODES[code]) || code || 'unknown error';

/** The words for a file-system error `e` met while writing or reading `file`, or null when `e` is not one. */
export function fsErrorWords(e: unknown): string | null {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string' || !FS_CODES[code]) return null;
  const tail = code === 'ENOSPC' || code === 'EDQUOT' ? '; free some space and rerun' : '';
  return `${FS_CODES[code]}${tail}`;
}

/**
 * The one line to show a user for an error they caused, or null for a bug. A TvlensError is the
 * user's by design; a file-system error on a path (a folder where a file belongs, a read-only or
 * full disk) is the user's too, named by its path.
 */
export function userErrorLine(e: unknown): string | null {
  if (e instanceof TvlensError) return e.message.split('\n')[0];
  const err = e as (NodeJS.ErrnoException & { dest?: string }) | null;
  if (err && typeof err === 'object' && typeof err.code === 'string' && FS_CODES[err.code]) {
    const where = err.path ? `${err.path}${err.dest ? ` → ${err.dest}` : ''}` : err.syscall ?? 'a file';
    return `${where}: ${fsErrorWords(err)}`;
  }
  return null;
}
