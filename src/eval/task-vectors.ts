/** Task-vector scores for the eval suite, from the analysis layer's search. */
import { Engine, fromCheckpoint } from '../analysis/engine.js';
import { tvSearch } from '../analysis/tv-search.js';
import { loadCheckpoint } from '../checkpoint/checkpoint.js';
import { resolveTaskConfig } from '../tasks/index.js';
import type { TaskVectorScores } from './suite.js';

/**
 * The prescribed layer is the checkpoint's TVP layer when it was trained with TVP-loss, else
 * `fallback` (the middle layer when not given), so a baseline is scored where its TVP twin was trained.
 */
export async function taskVectorScores(file: string, options: { layer?: number; seed?: number } = {}): Promise<TaskVectorScores> {
  const c = loadCheckpoint(file);
  const tvpLayer = (c.manifest.extra?.tvp as { tvp?: { layer?: number } } | undefined)?.tvp?.layer;
  const layer = options.layer ?? tvpLayer ?? Math.ceil(c.manifest.model.layers / 2);
  const engine = Engine.open(fromCheckpoint(c));
  try {
    const r = await tvSearch(engine, resolveTaskConfig(c.manifest.task), { seed: options.seed ?? 0 });
    const at = r.average.curve.find((s) => s.layers.length === 1 && s.layers[0] === layer);
    return {
      layer,
      atLayer: at ? at.test : NaN,
      bestLayer: r.average.best.layer,
      atBest: r.average.best.test,
      icl: r.average.icl.mean,
      zeroShot: r.average.baseline.test,
    };
  } finally {
    await engine.release();
  }
}
