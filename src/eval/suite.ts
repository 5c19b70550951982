/**
 * `tvlens eval`: the evaluation suite that tests the paper's claims, comparing groups of models
 * (a baseline and its TVP counterpart, each trained with ≥ 3 seeds on the same data and budget).
 *
 * Per model it measures, on fresh prompts from a fixed evaluation stream:
 *   - ICL: the score by number of shots on train tasks (TVP must not hurt it);
 *   - OOD: held-out tasks; regression queries scaled and shifted; demos with label noise;
 *   - length: prompts with fewer and with more demos than training saw (learned positions cannot go
 *     past maxSeq, so those lengths are reported as not applicable for them);
 *   - task vectors: accuracy at the prescribed layer ℓ and at the best layer (from the analysis layer).
 * Per group, each number is the mean over the group's models with a 95% percentile-bootstrap interval.
 */
import { type Model, openModel } from '../api/model.js';
import { InputError } from '../errors.js';
import { type Batch, type OodOptions, promptLayout, sampleBatch } from '../tasks/index.js';
import { type ShotCurve, scorePositions, shotCurve } from '../tasks/score.js';
import { Rng } from '../util/rng.js';
import { type Estimate, estimate } from '../util/stats.js';

export interface SuiteOptions {
  /** Prompts per condition. Default 256. */
  readonly prompts: number;
  /** Seed of the evaluation prompts (the same for every model). Default 1234. */
  readonly seed: number;
  /** Regression OOD: query x is multiplied by this, then shifted. Defaults 2 and 0.5. */
  readonly queryScale: number;
  readonly queryShift: number;
  /** Label noise on demos: flip probability for token tasks (default 0.2), std for regression (default 0.5). */
  readonly labelFlip: number;
  readonly labelNoise: number;
  /** Demo counts for length generalisation, as multiples of the trained maximum. Default [0.5, 1, 1.5, 2]. */
  readonly lengthFactors: readonly number[];
  /** Task-vector scores per model, by checkpoint file: supplied by the analysis layer. */
  readonly taskVectors?: (model: Model) => Promise<TaskVectorScores | null>;
}

export const SUITE_DEFAULTS: Readonly<SuiteOptions> = Object.freeze({
  prompts: 256,
  seed: 1234,
  queryScale: 2,
  queryShift: 0.5,
  labelFlip: 0.2,
  labelNoise: 0.5,
  lengthFactors: [0.5, 1, 1.5, 2],
});

export interface TaskVectorScores {
  /** The prescribed layer (the TVP layer, or the one asked for). */
  readonly layer: number;
  readonly atLayer: number;
  readonly bestLayer: number;
  readonly atBest: number;
  /** The ICL score the task vector is compared with, and the zero-shot baseline. */
  readonly icl: number;
  readonly zeroShot: number;
}

export interface ModelReport {
  readonly file: string;
  readonly modelHash: string;
  readonly metric: ShotCurve['metric'];
  readonly icl: ShotCurve;
  readonly heldout: ShotCurve | null;
  readonly queryShift: ShotCurve | null;
  readonly labelNoise: ShotCurve;
  /** Score at the query for each demo count; null where the prompt does not fit the model. */
  readonly length: readonly { demos: number; score: number | null }[];
  readonly taskVectors: TaskVectorScores | null;
}

/** The score at the query (the last scored position, after the most demos). */
export const final = (c: ShotCurve): number => c.byShots[c.byShots.length - 1];

/** The suite on a checkpoint: a file (opened and closed here), or a Model the caller holds open. */
export async function evaluateModel(given: string | Model, options: SuiteOptions): Promise<ModelReport> {
  const source = typeof given === 'string' ? await openModel(given) : given;
  const file = source.file;
  const task = source.taskConfig;
  if (!task) throw new InputError(`${file}: the eval suite needs a tvlens checkpoint (its manifest names the tasks)`);
  const regression = task.kind === 'linreg' || task.kind === 'sine';
  const demos = task.demos.max;
  const curve = async (split: 'train' | 'heldout', opts: { ood?: OodOptions; demos?: number } = {}): Promise<ShotCurve> => {
    const batch = sampleBatch(task, new Rng(options.seed), options.prompts, { split, demos: opts.demos ?? demos, ood: opts.ood });
    return score(source, batch);
  };
  try {
    const icl = await curve('train');
    const heldout = task.heldoutTasks > 0 ? await curve('heldout') : null;
    const queryShift = regression ? await curve('train', { ood: { queryScale: options.queryScale, queryShift: options.queryShift } }) : null;
    const labelNoise = await curve('train', { ood: regression ? { demoLabelNoise: options.labelNoise } : { demoLabelFlip: options.labelFlip } });
    const length: { demos: number; score: number | null }[] = [];
    for (const f of options.lengthFactors) {
      const k = Math.max(1, Math.round(demos * f));
      const fits = source.maxSeq === null || promptLayout(task, k).seq <= source.maxSeq || source.manifest?.model.positional !== 'learned';
      length.push({ demos: k, score: fits ? final(await curve('train', { demos: k })) : null });
    }
    return {
      file,
      modelHash: source.modelHash,
      metric: icl.metric,
      icl,
      heldout,
      queryShift,
      labelNoise,
      length,
      taskVectors: options.taskVectors ? await options.taskVectors(source) : null,
    };
  } finally {
    if (typeof given === 'string') await source.close();
  }
}

async function score(model: Model, batch: Batch): Promise<ShotCurve> {
  const output = await model.run(batch);
  return shotCurve(batch.kind, scorePositions(batch, { shape: output.dims, data: output.data }));
}

export interface GroupSummary {
  readonly name: string;
  readonly models: readonly string[];
  /** Each figure over the group's models: mean and 95% interval. */
  readonly figures: Readonly<Record<string, Estimate>>;
}

/** The figures a comparison table shows, from one model's report. */
export function figuresOf(r: ModelReport): Record<string, number | null> {
  const out: Record<string, number | null> = {
    icl_0shot: r.icl.byShots[0],
    icl_final: final(r.icl),
    heldout_final: r.heldout ? final(r.heldout) : null,
    query_shift_final: r.queryShift ? final(r.queryShift) : null,
    label_noise_final: final(r.labelNoise),
  };
  for (const l of r.length) out[`length_${l.demos}_demos`] = l.score;
  if (r.taskVectors) {
    out.tv_at_layer = r.taskVectors.atLayer;
    out.tv_best_layer = r.taskVectors.bestLayer;
    out.tv_at_best = r.taskVectors.atBest;
    out.tv_at_layer_over_icl = r.taskVectors.atLayer / r.taskVectors.icl;
  }
  return out;
}

export function summarise(name: string, reports: readonly ModelReport[]): GroupSummary {
  const keys = [...new Set(reports.flatMap((r) => Object.keys(figuresOf(r))))];
  const figures: Record<string, Estimate> = {};
  for (const k of keys) {
    const values = reports.map((r) => figuresOf(r)[k]).filter((v): v is number => v !== null && v !== undefined && Number.isFinite(v));
    if (values.length) figures[k] = estimate(values);
  }
  return { name, models: reports.map((r) => r.file), figures };
}
