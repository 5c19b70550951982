/** Task-vector scores for the eval suite, from the model's search. */
import type { Model } from '../api/model.js';
import { InputError } from '../errors.js';
import type { TaskVectorScores } from './suite.js';

/**
 * The prescribed layer is the checkpoint's TVP layer when it was trained with TVP-loss, else
 * `fallback` (the middle layer when not given), so a baseline is scored where its TVP twin was trained.
 */
export async function taskVectorScores(model: Model, options: { layer?: number; seed?: number } = {}): Promise<TaskVectorScores> {
  const manifest = model.manifest;
  if (!manifest) throw new InputError(`${model.file}: task-vector scores need a tvlens checkpoint`);
  const tvpLayer = (manifest.extra?.tvp as { tvp?: { layer?: number } } | undefined)?.tvp?.layer;
  const layer = options.layer ?? tvpLayer ?? Math.ceil(manifest.model.layers / 2);
  const r = await model.tvSearch(undefined, { seed: options.seed ?? 0 });
  const at = r.average.curve.find((s) => s.layers.length === 1 && s.layers[0] === layer);
  return {
    layer,
    atLayer: at ? at.test : NaN,
    bestLayer: r.average.best.layer,
    atBest: r.average.best.test,
    icl: r.average.icl.mean,
    zeroShot: r.average.baseline.test,
  };
}
