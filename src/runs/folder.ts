/**
 * A run folder's layout, and reading it: the checkpoints a training run wrote
 * (`checkpoints/step-000100.{onnx,json,state}`), the newest, and all of them in step order. Writing
 * them, with their lock and ownership checks, is the training loop's (train/run-folder.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { readJsonFile } from '../util/fs.js';

/** A checkpoint's path without its extension (.onnx, .json, .state): checkpoints/step-000100. */
export const stepFile = (dir: string, step: number): string => path.join(dir, 'checkpoints', `step-${String(step).padStart(6, '0')}`);

/** The newest checkpoint of a run folder, or null. */
export function latestCheckpoint(dir: string): { step: number; file: string } | null {
  const ckpt = path.join(dir, 'checkpoints');
  if (!fs.existsSync(ckpt)) return null;
  const steps = fs
    .readdirSync(ckpt)
    .map((f) => /^step-(\d+)\.state$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  return steps.length ? { step: steps[0], file: stepFile(dir, steps[0]) } : null;
}

/** The manifests (checkpoints/step-*.json) of a run folder, in step order; none when it has no checkpoints/. */
export function checkpointManifests(dir: string): string[] {
  const ckpt = path.join(dir, 'checkpoints');
  if (!fs.existsSync(ckpt)) return [];
  const step = (f: string) => Number(/^step-(\d+)\.json$/.exec(f)![1]);
  return fs.readdirSync(ckpt).filter((f) => /^step-\d+\.json$/.test(f)).sort((a, b) => step(a) - step(b)).map((f) => path.join(ckpt, f));
}

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
