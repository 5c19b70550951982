/**
 * Reading run folders: the checkpoints a training run wrote (`checkpoints/step-*.onnx`, each with
 * its manifest), in step order. Writing them, with their lock and ownership checks, is the
 * training loop's (train/run-folder.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { readJsonFile } from '../util/fs.js';

/** The checkpoints of a run folder (its checkpoints/*.onnx with a manifest), by step. */
export function runCheckpoints(dir: string): string[] {
  const folder = fs.existsSync(path.join(dir, 'checkpoints')) ? path.join(dir, 'checkpoints') : dir;
  if (!fs.existsSync(folder) || !fs.statSync(folder).isDirectory()) throw new InputError(`${dir} is not a run folder (no checkpoints/ inside)`);
  const files = fs
    .readdirSync(folder)
    .filter((f) => f.endsWith('.onnx') && fs.existsSync(path.join(folder, f.replace(/\.onnx$/, '.json'))))
    .map((f) => path.join(folder, f));
  if (files.length === 0) throw new InputError(`${folder} holds no checkpoints (.onnx with a .json manifest)`);
  const step = (f: string) => Number((readJsonFile(f.replace(/\.onnx$/, '.json'), 'a checkpoint manifest') as { step?: unknown } | null)?.step);
  return files.sort((a, b) => step(a) - step(b));
}
