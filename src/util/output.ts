/**
 * The one rule for a file tvlens is asked to write (CLI flags and library options alike): refused
 * before any work when it is a folder, names a folder (ends in /), is a symbolic link (writing
 * would replace the link itself, dangling or not), sits under a file, or exists but is not what
 * tvlens writes there (`own` tells), so that a user's file is never overwritten.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { writeFileAtomic } from './fs.js';

export function checkOutputFile(file: string, flag: string, own: (file: string) => boolean): void {
  if (file === '') throw new InputError(`${flag} is empty; give a file name`);
  if (/[\\/]$/.test(file)) throw new InputError(`${flag} ${file} ends with '/', a folder; give a file name`);
  const abs = path.resolve(file);
  const link = fs.lstatSync(abs, { throwIfNoEntry: false });
  if (link?.isSymbolicLink()) throw new InputError(`${flag} ${file} is a symbolic link${fs.existsSync(abs) ? '' : ' to nothing'}; give the path of a file, not of a link`);
  const st = fs.statSync(abs, { throwIfNoEntry: false });
  if (st?.isDirectory()) throw new InputError(`${flag} ${file} is a folder; give a file name`);
  if (st && !st.isFile()) throw new InputError(`${flag} ${file} is not a regular file`);
  if (st && !own(abs)) throw new InputError(`${flag} ${file} exists and is not a file tvlens wrote; choose another name or remove it yourself`);
  for (let at = path.dirname(abs); ; at = path.dirname(at)) {
    const s = fs.statSync(at, { throwIfNoEntry: false });
    if (s) {
      if (!s.isDirectory()) throw new InputError(`${flag} ${file}: ${at} is a file, not a folder`);
      break;
    }
    if (path.dirname(at) === at) break;
  }
}

/** Writes `text` to `file` (atomically) unless it holds something else: a rerun rewrites only the same text. */
export function writeTextOnce(file: string, flag: string, text: string): void {
  checkOutputFile(file, flag, (f) => fs.readFileSync(f, 'utf8') === text);
  writeFileAtomic(path.resolve(file), text);
}

/** Whether `file` is a JSON file tvlens wrote (it records the tvlens version). */
export function isOwnJson(file: string): boolean {
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    return typeof j === 'object' && j !== null && ('tvlensVersion' in j || 'analysis' in j);
  } catch {
    return false;
  }
}

/** Whether `file` starts like a file of `magic` bytes (an Arrow file: 'ARROW1'; a report: '<!doctype html'). */
export function startsWith(file: string, magic: string): boolean {
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const buf = Buffer.alloc(magic.length);
      fs.readSync(fd, buf, 0, magic.length, 0);
      return buf.toString('latin1').toLowerCase() === magic.toLowerCase();
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** An HTML report tvlens wrote. */
export const isOwnHtml = (file: string) => startsWith(file, '<!doctype html');
/** An Arrow file (tvlens writes caches and study tables as Arrow IPC files). */
export const isArrowFile = (file: string) => startsWith(file, 'ARROW1');
