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
