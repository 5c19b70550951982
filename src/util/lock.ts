/**
 * One writer per run folder: `<dir>/.tvlens.lock` holds the writer's PID, host and command. A
 * second writer gets one line naming the holder. A lock whose process is gone (same host, PID not
 * alive) is stale and taken over. Locks are re-entrant within a process (tvp locks, then train),
 * and removed on exit, error and SIGINT / SIGTERM.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InputError, describeFsCode } from '../errors.js';
import { onExit } from './cleanup.js';
import { ensureDir } from './fs.js';

export const LOCK_FILE = '.tvlens.lock';

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

const held = new Map<string, { count: number; untrack: () => void }>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(file: string): LockInfo | null {
  try {
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
    return typeof j.pid === 'number' && typeof j.host === 'string' ? j : null;
  } catch {
    return null;
  }
}

/** Whether the lock in `file` belongs to no live writer. An unreadable lock counts as stale once a minute old. */
function stale(file: string): boolean {
  const info = readLock(file);
  if (!info) {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    return !st || Date.now() - st.mtimeMs > 60_000;
  }
  return info.host === os.hostname() && info.pid !== process.pid && !alive(info.pid);
}

/**
 * Locks `dir` (made if missing) for writing, and returns the release function. Throws an
 * InputError naming the holder when another live process holds it.
 */
export function lockRunFolder(dir: string): () => void {
  const abs = path.resolve(dir);
  const mine = held.get(abs);
  if (mine) {
    mine.count++;
    return release(abs);
  }
  ensureDir(abs);
  const file = path.join(abs, LOCK_FILE);
  const info: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: process.argv.slice(2).join(' ') };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeSync(fd, `${JSON.stringify(info)}\n`);
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new InputError(`cannot lock ${abs}: ${describeFsCode(code)}`);
      if (attempt < 2 && stale(file)) {
        fs.rmSync(file, { force: true });
        continue;
      }
      const other = readLock(file);
      const who = other ? `process ${other.pid} on ${other.host} (since ${other.started})` : 'another process';
      throw new InputError(`${abs} is being written by ${who}; wait for it to finish, or delete ${file} if that process is gone`);
    }
  }
  const untrack = onExit(() => fs.rmSync(file, { force: true }));
  held.set(abs, { count: 1, untrack });
  return release(abs);
}

function release(abs: string): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    const h = held.get(abs);
    if (!h || --h.count > 0) return;
    held.delete(abs);
    h.untrack();
    const file = path.join(abs, LOCK_FILE);
    if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
}
