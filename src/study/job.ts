/**
 * One study job: train (or resume) its run, then analyse the final checkpoint, and write
 * `jobs/<id>/result.json` last, atomically. A job with a result whose hash matches is done; a job
 * with a half-trained run resumes it exactly; a job whose run finished but whose analyses did not
 * reruns the analyses only.
 *
 *   jobs/<id>/run/          the training run (config.json, metrics.jsonl, checkpoints/)
 *   jobs/<id>/result.json   the row: factors, training curve summary, task vectors, locality,
 *                           eval suite, query-copy measures
 */
import fs from 'node:fs';
import path from 'node:path';
import { type HendelResult, type MaskingResult, type ProbeResult, emergenceDiagnostics } from '../analysis/emergence.js';
import { localityRow } from '../analysis/locality.js';
import { queryCopy } from '../analysis/query-copy.js';
import { type Model, openModel } from '../api/model.js';
import { InputError } from '../errors.js';
import { SUITE_DEFAULTS, evaluateModel, final } from '../eval/suite.js';
import { type TaskConfig, ngramCurve, resolveTaskConfig, sampleBatch } from '../tasks/index.js';
import { Rng } from '../util/rng.js';
import { latestCheckpoint } from '../runs/folder.js';
import { type MetricsLine, train } from '../train/loop.js';
import { listSome, removeRunFiles } from '../train/run-folder.js';
import { runTvp } from '../tvp/run.js';
import { lockRunFolder } from '../util/lock.js';
import { writeJsonAtomic } from '../util/fs.js';
import type { AnalysisSettings, Job } from './spec.js';
import { checkJobRun, checkResult, markJobRun } from './checks.js';

/** What a job records. Scores are accuracy (token tasks) or normalised MSE (regression). */
export interface JobResult {
  readonly id: string;
  readonly hash: string;
  readonly group: string;
  readonly factors: Job['factors'];
  readonly kind: Job['kind'];
  readonly lambda: number | null;
  readonly seed: number;
  readonly family: string;
  readonly format: string;
  readonly layers: number;
  readonly positional: string;
  readonly steps: number;
  readonly metric: 'accuracy' | 'nmse';
  readonly weightsSha256: string;
  /** Plateau: the final-shot ICL score moved by at most PLATEAU over the last 3 evaluations. */
  readonly converged: boolean;
  /** The eval suite's k-shot ICL score on train tasks at the query, and zero-shot. */
  readonly icl: number;
  readonly zeroShot: number;
  /** Hendel-style TV (replace), best layer chosen on dev, scored on test. */
  readonly tvBestLayer: number;
  readonly tvBest: number;
  /** (TV − zero-shot) ÷ (ICL − zero-shot), on the search's own prompts. */
  readonly recovered: number;
  readonly strength: number;
  /** The prescribed layer ℓ (the TVP layer; the middle layer for a baseline) and the TV there (test). */
  readonly tvLayer: number;
  readonly tvAtLayer: number;
  /** ICL and zero-shot of the search's prompts (the denominators of recovered). */
  readonly searchIcl: number;
  readonly searchZeroShot: number;
  /** Best 2 and 3 layers injected together minus the best single layer (test; higher is better). */
  readonly nonLocality2: number | null;
  readonly nonLocality3: number | null;
  readonly entropy: number | null;
  /** TV per layer ℓ = 0..L (all queries). */
  readonly tvCurve: readonly number[];
  /** Variants: add + centring, and θ averaged over 4 dummy queries per demo set (best layer, test). */
  readonly tvAddCentered: number | null;
  readonly tvDummies: number | null;
  /** Eval suite (at the query, the trained number of demos unless named). */
  readonly heldout: number | null;
  readonly labelNoise: number;
  readonly queryShift: number | null;
  readonly length: readonly { demos: number; score: number | null }[];
  /** Query copy (triplet only): probe of x_q from the arrow at ℓ, and the re-read of x_q after ℓ. */
  readonly probe: readonly number[] | null;
  readonly probeChance: number | null;
  readonly reread: readonly number[] | null;
  /** ICL by number of shots on train tasks (eval suite), 0..k. */
  readonly iclByShots: readonly number[];
  /** In-context n-gram baselines by shots on the ICL curve's own prompts (GINC and RegBench only); the aggregate recomputes them by today's `ngramBaselines`. */
  readonly ngram: { readonly unigram: readonly number[]; readonly bigram: readonly number[]; readonly trigram?: readonly number[] } | null;
  /** Hendel et al.'s protocol exactly: one θ per demo set from 2 dummy queries, replace, ℓ on dev, test score. */
  readonly hendel: Pick<HendelResult, 'best' | 'icl' | 'zeroShot' | 'recovered'> & { readonly curve: readonly number[] };
  /** Hendel et al.'s attention masking: ICL with the last position blind to the demos from block ℓ on. */
  readonly masking: Pick<MaskingResult, 'masked' | 'readBy'>;
  /** Linear probe of the task identity at the last arrow, by layer (finite task pools only). */
  readonly taskProbe: ProbeResult | null;
  readonly seconds: { readonly train: number; readonly analysis: number };
}

const PLATEAU = { accuracy: 0.02, nmse: 0.03 };

export const jobDir = (studyDir: string, id: string) => path.join(studyDir, 'jobs', id);
export const resultFile = (studyDir: string, id: string) => path.join(jobDir(studyDir, id), 'result.json');

/** The job's finished result, or null when it has none (or one made by another config). */
export function readResult(studyDir: string, job: Job): JobResult | null {
  const file = resultFile(studyDir, job.id);
  if (!fs.existsSync(file)) return null;
  let r: JobResult;
  try {
    r = checkResult(JSON.parse(fs.readFileSync(file, 'utf8')), job, file);
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(`${file} is not valid JSON; remove it and the study reruns that job's analyses`);
  }
  return r.hash === job.hash ? r : null;
}

export interface JobProgress {
  readonly stage: string;
  readonly done: number;
  readonly total: number;
}

/** Runs a job to its result (see the file comment); `onProgress` hears each stage. */
export async function runJob(studyDir: string, job: Job, settings: AnalysisSettings, onProgress?: (p: JobProgress) => void): Promise<JobResult> {
  const done = readResult(studyDir, job);
  if (done) return done;
  const dir = jobDir(studyDir, job.id);
  const runDir = path.join(dir, 'run');
  const steps = job.kind === 'tvp-finetune' ? job.config.train.steps / 2 : job.config.train.steps;
  const t0 = performance.now();
  checkJobRun(dir, job);
  await trainJob(studyDir, job, runDir, steps, onProgress);
  markJobRun(dir, job);
  const t1 = performance.now();
  onProgress?.({ stage: 'analyses', done: 0, total: 1 });
  const latest = latestCheckpoint(runDir);
  if (!latest || latest.step < steps) throw new InputError(`${runDir}: training stopped before step ${steps}`);
  const result = await analyse(job, `${latest.file}.onnx`, runDir, settings, { train: (t1 - t0) / 1000 });
  writeJsonAtomic(resultFile(studyDir, job.id), result);
  return result;
}

async function trainJob(studyDir: string, job: Job, runDir: string, steps: number, onProgress?: (p: JobProgress) => void): Promise<void> {
  const latest = latestCheckpoint(runDir);
  if (latest && latest.step >= steps) return;
  // Held for the whole job (the trainers lock again, re-entrantly): no other process works on it meanwhile.
  const release = lockRunFolder(runDir);
  try {
    // A run stopped before its first checkpoint has nothing to resume: start it again from nothing.
    // removeRunFiles removes only a run's own files, and refuses a folder holding anything else.
    if (!latest) {
      const foreign = removeRunFiles(runDir);
      if (foreign.length) throw new InputError(`${runDir} holds files that are not a tvlens run (${listSome(foreign)}); remove them to rerun the job`);
    }
    await trainRun(studyDir, job, runDir, steps, latest !== null, onProgress);
  } finally {
    release();
  }
}

async function trainRun(studyDir: string, job: Job, runDir: string, steps: number, resume: boolean, onProgress?: (p: JobProgress) => void): Promise<void> {
  const onStep = (s: { step: number; total: number }) => onProgress?.({ stage: 'train', done: s.step, total: s.total });
  if (job.kind === 'baseline') {
    await train(job.config, runDir, { resume, onStep });
    return;
  }
  const tvp = { lambda: job.lambda!, layer: job.tvpLayer! };
  if (job.kind === 'tvp-scratch') {
    // tvp reads its run config from a file; the job's own config is that file.
    const configFile = path.join(path.dirname(runDir), 'config.json');
    if (!fs.existsSync(configFile)) writeJsonAtomic(configFile, job.config);
    await runTvp({ from: configFile, out: runDir, tvp, resume, onStep });
    return;
  }
  // tvp-finetune: the baseline of the same cell and seed, at half its steps, fine-tuned for the other half.
  const baseRun = path.join(jobDir(studyDir, job.baselineId!), 'run');
  const from = path.join(baseRun, 'checkpoints', `step-${String(steps).padStart(6, '0')}.onnx`);
  if (!fs.existsSync(from)) {
    throw new InputError(`${job.id} fine-tunes ${from}, which does not exist: run the baseline job ${job.baselineId} first (a study runs it first in the same shard)`);
  }
  await runTvp({ from, out: runDir, tvp, steps, seed: job.seed, resume, onStep });
}

/** One Model per job: the checkpoint is loaded once, and every analysis runs through it. */
async function analyse(job: Job, file: string, runDir: string, s: AnalysisSettings, seconds: { train: number }): Promise<JobResult> {
  const model = await openModel(file);
  try {
    return await analyseModel(job, model, runDir, s, seconds);
  } finally {
    await model.close();
  }
}

async function analyseModel(job: Job, model: Model, runDir: string, s: AnalysisSettings, seconds: { train: number }): Promise<JobResult> {
  const t0 = performance.now();
  const ck = { manifest: model.manifest! };
  const task = model.taskConfig!;
  const L = ck.manifest.model.layers;
  const search = { prompts: s.prompts, queries: s.queries, seed: 0 };
  const loc = await model.locality(undefined, { ...search, permutations: s.permutations, pca: false });
  const row = localityRow(loc, { file: model.file, step: ck.manifest.step, weightsSha256: ck.manifest.weightsSha256, layers: L });
  const curve = loc.search.average.curve;
  const tvpLayer = (ck.manifest.extra?.tvp as { tvp?: { layer?: number } } | undefined)?.tvp?.layer;
  const tvLayer = tvpLayer ?? Math.ceil(L / 2);
  // The two search variants a researcher would try, on one engine.
  let variants = { addCentered: null as number | null, dummies: null as number | null };
  if (s.variants) {
    const best = async (opts: { mode?: 'add'; center?: boolean; dummies?: number }) => (await model.tvSearch(task, { ...search, ...opts })).average.best.test;
    variants = { addCentered: await best({ mode: 'add', center: true }), dummies: await best({ dummies: 4 }) };
  }
  const suite = await evaluateModel(model, { ...SUITE_DEFAULTS, prompts: s.evalPrompts });
  const copy = await queryCopy(model.backend, task);
  const emergence = await emergenceDiagnostics(model.backend, task);
  const nl = (k: number) => row.nonLocality.find((n) => n.k === k)?.gain ?? null;
  return {
    id: job.id,
    hash: job.hash,
    group: job.group,
    factors: job.factors,
    kind: job.kind,
    lambda: job.lambda,
    seed: job.seed,
    family: task.kind === 'discrete' ? task.discrete.families.join('+') : task.kind,
    format: task.format,
    layers: L,
    positional: ck.manifest.model.positional,
    steps: ck.manifest.step,
    metric: loc.metric,
    weightsSha256: ck.manifest.weightsSha256,
    converged: plateaued(runDir, loc.metric),
    icl: final(suite.icl),
    zeroShot: suite.icl.byShots[0],
    tvBestLayer: loc.search.average.best.layer,
    tvBest: loc.search.average.best.test,
    recovered: row.recovered,
    strength: row.strength,
    tvLayer,
    tvAtLayer: curve.find((c) => c.layers.length === 1 && c.layers[0] === tvLayer)?.test ?? NaN,
    searchIcl: row.icl,
    searchZeroShot: row.baseline,
    nonLocality2: nl(2),
    nonLocality3: nl(3),
    entropy: row.entropy,
    tvCurve: curve.map((c) => c.all.mean),
    tvAddCentered: variants.addCentered,
    tvDummies: variants.dummies,
    heldout: suite.heldout ? final(suite.heldout) : null,
    labelNoise: final(suite.labelNoise),
    queryShift: suite.queryShift ? final(suite.queryShift) : null,
    length: suite.length,
    probe: copy?.probe ?? null,
    probeChance: copy?.chance ?? null,
    reread: copy?.reread ?? null,
    iclByShots: suite.icl.byShots,
    ngram: ngramBaselines(task, s.evalPrompts),
    hendel: { best: emergence.hendel.best, icl: emergence.hendel.icl, zeroShot: emergence.hendel.zeroShot, recovered: emergence.hendel.recovered, curve: emergence.hendel.tv.all },
    masking: { masked: emergence.masking.masked, readBy: emergence.masking.readBy },
    taskProbe: emergence.probe,
    seconds: { train: seconds.train, analysis: (performance.now() - t0) / 1000 },
  };
}

/** The in-context unigram, bigram and trigram baselines by shots for the sequence families (GINC, RegBench), else null. */
export function ngramBaselines(task: TaskConfig, prompts: number): JobResult['ngram'] {
  if (task.kind !== 'hmm' && task.kind !== 'dfa') return null;
  // The eval suite's own ICL prompts (its seed, train split, all demos): model and baselines are scored on the same queries.
  const batch = sampleBatch(task, new Rng(SUITE_DEFAULTS.seed), prompts, { split: 'train', demos: task.demos.max });
  if (batch.kind !== 'tokens') return null;
  return { unigram: ngramCurve(batch, 1).byShots, bigram: ngramCurve(batch, 2).byShots, trigram: ngramCurve(batch, 3).byShots };
}

/** Whether the final-shot ICL score on train tasks moved by at most PLATEAU over the last 3 evaluations. */
function plateaued(runDir: string, metric: 'accuracy' | 'nmse'): boolean {
  const lines = fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MetricsLine);
  const last = lines.slice(-3).map((l) => l.eval.train.byShots[l.eval.train.byShots.length - 1]);
  if (last.length < 3) return false;
  const spread = Math.max(...last) - Math.min(...last);
  return metric === 'accuracy' ? spread <= PLATEAU.accuracy : spread <= PLATEAU.nmse * Math.max(...last) + 1e-3;
}
