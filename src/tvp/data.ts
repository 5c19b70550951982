/** One TVP-loss step's data: few-shot prompts P, and zero-shot prompts Q of the same tasks. */
import type { HostTensor } from '../runtime/session.js';
import { type Batch, addSymbolTargets, concatBatches, sampleBatch, sampleTrainBatch } from '../tasks/index.js';
import type { RunConfig } from '../train/config.js';
import { batchFeeds } from '../tasks/feeds.js';
import type { StepData } from '../train/loop.js';
import type { Rng } from '../util/rng.js';
import { TVP_INPUTS, type TvpConfig } from './loss.js';

const i64 = (values: ArrayLike<number>): HostTensor => ({ dtype: 'int64', shape: [values.length], data: BigInt64Array.from(Array.from(values), (v) => BigInt(v)) });

/** P's prompts: in groups of `average` prompts that share a task when h is averaged. */
function fewShot(run: RunConfig, tvp: TvpConfig, rng: Rng, step: number): Batch {
  const B = run.train.batchSize;
  const demos = tvp.demos || undefined;
  if (tvp.average === 1) return sampleTrainBatch(run.task, rng, B, demos, step);
  const anchors = sampleTrainBatch(run.task, rng, B / tvp.average, demos, step);
  return concatBatches(anchors.tasks.map((task) => sampleBatch(run.task, rng, tvp.average, { tasks: [task], demos: anchors.demos, step })));
}

export function tvpStepData(run: RunConfig, tvp: TvpConfig, rng: Rng, step: number): StepData {
  const p = fewShot(run, tvp, rng, step);
  if (run.train.lmLoss) addSymbolTargets(run.task, p); // the ICL term's targets; Q is only patched
  const q = concatBatches(p.tasks.map((task) => sampleBatch(run.task, rng, 1, { tasks: [task], demos: 0, step })));
  const qFeeds = Object.fromEntries(Object.entries(batchFeeds(q)).map(([k, v]) => [`q.${k}`, v]));
  const feeds: Record<string, HostTensor> = {
    ...batchFeeds(p),
    ...qFeeds,
    [TVP_INPUTS.sourcePos]: i64(tvp.position < 0 ? p.queryPos : new Array(p.batch).fill(tvp.position)),
    [TVP_INPUTS.patchPos]: i64(q.queryPos),
  };
  if (tvp.average > 1) feeds[TVP_INPUTS.groupMean] = groupMean(p.batch, tvp.average);
  return { feeds, tokens: p.batch * p.seq + q.batch * q.seq };
}

/** The [B, B] matrix that replaces each row by the mean of its group of `size` consecutive rows. */
function groupMean(B: number, size: number): HostTensor {
  const m = new Float32Array(B * B);
  for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) if (Math.floor(i / size) === Math.floor(j / size)) m[i * B + j] = 1 / size;
  return { dtype: 'float32', shape: [B, B], data: m };
}
