/**
 * File writes that never leave a half-written file (write a temporary file, then rename it), a
 * directory maker that cannot spin, and JSON reads whose errors name the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError, describeFsCode, fsErrorWords } from '../errors.js';
import { trackTemp } from './cleanup.js';

/**
 * Makes `dir` and its missing parents, one level at a time. Node's recursive mkdirSync spins
 * forever under /proc (it retries the parent on ENOENT), so each level is made by hand, and the
 * nearest existing ancestor must be a writable directory.
 */
export function ensureDir(dir: string): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let at = abs;
  for (;;) {
    const st = fs.statSync(at, { throwIfNoEntry: false });
    if (st) {
      if (!st.isDirectory()) throw new InputError(`cannot make ${abs}: ${at} is a file, not a folder`);
      break;
    }
    missing.push(at);
    const parent = path.dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && fs.statSync(d).isDirectory()) continue;
      throw new InputError(`cannot make the folder ${d}: ${describeFsCode(code)}`);
    }
  }
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  ensureDir(path.dirname(file));
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st?.isDirectory()) throw new InputError(`cannot write ${file}: it is a folder`);
  const tmp = `${file}.${process.pid}.tmp`;
  const untrack = trackTemp(tmp);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    const words = fsErrorWords(e);
    throw words ? new InputError(`cannot write ${file}: ${words}`) : e;
  } finally {
    untrack();
  }
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Parses a JSON file; a missing file, a folder or bad JSON is an InputError naming the file and `what` it should be. */
export function readJsonFile(file: string, what = 'a JSON file'): unknown {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) throw new InputError(`${file} does not exist`);
  if (st.isDirectory()) throw new InputError(`${file} is a folder, not ${what}`);
  const text = fs.readFileSync(file, 'utf8');
  if (text.trim() === '') throw new InputError(`${file} is empty, not ${what}`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file} is not valid JSON (${(e as Error).message.split('\n')[0]}); expected ${what}`);
  }
}
