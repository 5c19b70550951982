/**
 * What a run folder may hold, so that tvlens can tell its own output from a user's files before
 * it reuses or removes anything. tvlens removes only files it recognises as its own, and never a
 * folder that holds anything else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LOCK_FILE } from '../util/lock.js';

const TOP = new Set(['config.json', 'metrics.jsonl', 'run.json', 'tvp.json', LOCK_FILE]);
const CHECKPOINT = /^step-\d+\.(onnx|json|state)$/;
/** A temporary of one of the files above (`<file>.<pid>.tmp`, see util/fs.ts). */
const TEMP = /^(config\.json|metrics\.jsonl|run\.json|tvp\.json|step-\d+\.(onnx|json|state)|training_model\.onnx|eval_model\.onnx|optimizer_model\.onnx|checkpoint|inputs\.json)\.\d+\.tmp$/;
export const isOwnTemp = (name: string): boolean => TEMP.test(name);
/** Files of the TVP training artifacts (see tvp/artifacts.ts). */
const ARTIFACT = /^(training_model\.onnx|eval_model\.onnx|optimizer_model\.onnx|checkpoint|inputs\.json)$/;

/** The entries of `dir` (relative paths) that a tvlens run does not write; [] for a missing or empty folder. */
export function foreignEntries(dir: string): string[] {
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st) return [];
  if (!st.isDirectory()) return [path.basename(dir)];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isFile() && (TOP.has(e.name) || TEMP.test(e.name))) continue;
    if (e.isDirectory() && (e.name === 'checkpoints' || e.name === 'artifacts')) {
      const re = e.name === 'checkpoints' ? CHECKPOINT : ARTIFACT;
      for (const f of fs.readdirSync(path.join(dir, e.name), { withFileTypes: true })) {
        if (!(f.isFile() && (re.test(f.name) || TEMP.test(f.name)))) out.push(`${e.name}/${f.name}`);
      }
      continue;
    }
    out.push(e.name);
  }
  return out.sort();
}

/** Whether `dir` is missing or empty (a lock aside). */
export function isEmptyFolder(dir: string): boolean {
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st) return true;
  return st.isDirectory() && fs.readdirSync(dir).every((f) => f === LOCK_FILE);
}

/**
 * Removes a run folder's own files (never the lock, which its holder removes), then its
 * subfolders once empty. Refuses (returns the entries) when the folder holds anything else.
 */
export function removeRunFiles(dir: string): string[] {
  const foreign = foreignEntries(dir);
  if (foreign.length) return foreign;
  if (!fs.existsSync(dir)) return [];
  for (const sub of ['checkpoints', 'artifacts']) {
    const d = path.join(dir, sub);
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d)) fs.rmSync(path.join(d, f));
    fs.rmdirSync(d);
  }
  for (const f of fs.readdirSync(dir)) if (f !== LOCK_FILE) fs.rmSync(path.join(dir, f));
  return [];
}

/** A short list of entries for a message: the first three and a count. */
export function listSome(entries: readonly string[]): string {
  return entries.length <= 3 ? entries.join(', ') : `${entries.slice(0, 3).join(', ')} and ${entries.length - 3} more`;
}
