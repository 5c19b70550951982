/**
 * `tvlens train`: the ICL training loop. Every `evalEvery` steps it scores fresh prompts by number
 * of shots and appends a line to metrics.jsonl; every `checkpointEvery` steps it writes an ONNX
 * checkpoint with its manifest and a training-state file, so `--resume` continues exactly.
 *
 * Run folder layout:
 *   config.json                    the resolved run config
 *   metrics.jsonl                  one line per evaluation
 *   checkpoints/step-000100.onnx   inference model, weights as initializers
 *   checkpoints/step-000100.json   its manifest
 *   checkpoints/step-000100.state  weights, AdamW moments, step and data RNG (see checkpoint/state.ts)
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Manifest, weightsHash, writeCheckpoint } from '../checkpoint/checkpoint.js';
import { inferenceGraph, outputName } from '../model/inference.js';
import { initialParams, paramNames } from '../model/transformer.js';
import { configHash, readState, verifyState, writeState } from '../checkpoint/state.js';
import { ConfigError, InputError, TvlensError, fsErrorWords } from '../errors.js';
import { dMlpOf } from '../model/config.js';
import { type TypedData, toOnnxBytes } from '../graph/index.js';
import { type HostTensor, Session } from '../runtime/session.js';
import { addSymbolTargets, promptLength, sampleBatch, sampleTrainBatch } from '../tasks/index.js';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { lockRunFolder } from '../util/lock.js';
import { latestCheckpoint, stepFile } from '../runs/folder.js';
import { checkMemory, trainingMemory } from '../util/memory.js';
import { Rng } from '../util/rng.js';
import { type RunConfig, sameRunConfig } from './config.js';
import { batchFeeds } from '../tasks/feeds.js';
import { type ShotCurve, scorePositions, shotCurve } from '../tasks/score.js';
import { iclLossProgram } from './icl-loss.js';
import { learningRate } from './optimizer.js';
import { foreignEntries, isEmptyFolder, isOwnTemp, listSome } from './run-folder.js';
import { type LossProgram, type StepModels, Trainer, freshState } from './step.js';

export class TrainingDivergedError extends TvlensError {
  override name = 'TrainingDivergedError';
}

export interface StepInfo {
  readonly step: number;
  readonly total: number;
  readonly loss: number;
  readonly lr: number;
  readonly tokensPerSec: number;
}

export interface MetricsLine {
  readonly step: number;
  /** Mean training loss over the steps since the previous line. */
  readonly trainLoss: number;
  readonly lr: number;
  readonly tokensPerSec: number;
  readonly eval: { readonly train: ShotCurve; readonly heldout?: ShotCurve };
}

export interface TrainOptions {
  /** Continue from the newest checkpoint in the run folder. */
  readonly resume?: boolean;
  /** Stop after this step (as if interrupted); the run can be resumed later. */
  readonly stopAfter?: number;
  readonly onStep?: (info: StepInfo) => void;
  readonly onEval?: (line: MetricsLine) => void;
  /** Called once every check has passed, before the step graphs are built (which takes a while for a large model). */
  readonly onBuild?: () => void;
  /** Before each evaluation (with the step): a large model's takes a while. */
  readonly onEvalStart?: (step: number) => void;
  /**
   * Builds the loss program; the default is the plain ICL loss. TVP-loss passes its own. It is
   * called with seed null (zero weights): the trainer fills them from `initialParams`.
   */
  readonly program?: (cfg: RunConfig, seed: null) => LossProgram;
  /** Draws one step's feeds; the default is a batch of training prompts. TVP-loss adds its zero-shot prompts. */
  readonly sample?: (cfg: RunConfig, rng: Rng, step: number) => StepData;
  /** Prebuilt step models (training artifacts read from disk), used instead of building them. */
  readonly models?: StepModels;
  /** Initial weights (a fine-tune); optimizer state starts fresh. */
  readonly initialParams?: ReadonlyMap<string, TypedData>;
  /** Extra manifest fields. */
  readonly manifestExtra?: Record<string, unknown>;
  /** Refuse to start when the estimated memory is over this many bytes. Default: the memory available now. */
  readonly maxMemory?: number;
}

export interface StepData {
  readonly feeds: Record<string, HostTensor>;
  /** Tokens processed, for the throughput figure. */
  readonly tokens: number;
}

/** One step of plain ICL training: a batch of prompts from the training tasks (with the demo-dropout mask when on). */
export function iclStepData(cfg: RunConfig, rng: Rng, step: number): StepData {
  const batch = sampleTrainBatch(cfg.task, rng, cfg.train.batchSize, undefined, step);
  if (cfg.train.lmLoss) addSymbolTargets(cfg.task, batch);
  const feeds: Record<string, HostTensor> = batchFeeds(batch);
  if (cfg.train.demoKeep < 1) feeds.keep = { dtype: 'float32', shape: [batch.batch, batch.seq], data: demoKeepMask(batch, cfg.train.demoKeep, rng) };
  return { feeds, tokens: batch.batch * batch.seq };
}

/**
 * Token-wise dropout on the demos: 1 = keep, 0 = drop, drawn independently for every position
 * before the query's block (its x starts at queryPos − xOffset); the query's block is always kept.
 * Drawn from the data stream's Rng after the batch, so a resumed run draws the same masks.
 */
export function demoKeepMask(batch: { batch: number; seq: number; queryPos: Int32Array; xOffset: number }, keep: number, rng: Rng): Float32Array {
  const mask = new Float32Array(batch.batch * batch.seq).fill(1);
  for (let b = 0; b < batch.batch; b++) {
    const queryStart = batch.queryPos[b] - batch.xOffset;
    for (let p = 0; p < queryStart; p++) if (rng.uniform() >= keep) mask[b * batch.seq + p] = 0;
  }
  return mask;
}

export interface RunSummary {
  readonly dir: string;
  readonly steps: number;
  readonly lastCheckpoint: string;
  readonly last: MetricsLine | null;
}

export async function train(cfg: RunConfig, dir: string, options: TrainOptions = {}): Promise<RunSummary> {
  const { train: loop } = cfg;
  // Everything is checked before anything is written: the step to stop at, the memory, the folder.
  if (options.stopAfter !== undefined && !(Number.isSafeInteger(options.stopAfter) && options.stopAfter >= 1)) {
    throw new ConfigError(`expected a positive integer, got ${options.stopAfter}`, '--stop-after');
  }
  // A stop before the first checkpoint would save nothing (and leave nothing to resume from).
  const firstCheckpoint = Math.min(loop.checkpointEvery, loop.steps);
  if (options.stopAfter !== undefined && !options.resume && options.stopAfter < firstCheckpoint) {
    throw new ConfigError(`${options.stopAfter} is before the first checkpoint (step ${firstCheckpoint}, train.checkpointEvery ${loop.checkpointEvery}), so nothing would be saved; stop at ${firstCheckpoint} or later`, '--stop-after');
  }
  const m = cfg.model;
  const longest = promptLength(cfg.task, cfg.task.demos.max);
  checkMemory(
    trainingMemory({ ...m, dMlp: dMlpOf(m), vocab: m.vocab }, loop.batchSize, longest, options.program ? 2 : 1),
    'training this model',
    'lower model.dModel, model.layers or train.batchSize',
    options.maxMemory,
  );
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) throw new InputError(`${dir} is a file; --out must be a run folder`);
  if (options.resume && !st) throw new InputError(`nothing to resume: ${dir} does not exist`);
  const release = lockRunFolder(dir);
  try {
    return await trainLocked(cfg, dir, options);
  } finally {
    release();
  }
}

/** The run folder's identity: a random run id and the config's hash, written when the run starts. */
interface RunInfo {
  readonly format: 'tvlens-run/1';
  readonly runId: string;
  readonly configSha256: string;
  readonly created: string;
}

async function trainLocked(cfg: RunConfig, dir: string, options: TrainOptions): Promise<RunSummary> {
  const { train: loop } = cfg;
  const configFile = path.join(dir, 'config.json');
  const metricsFile = path.join(dir, 'metrics.jsonl');
  const runFile = path.join(dir, 'run.json');
  let cfgHash = configHash(cfg);
  removeStaleTemps(dir);
  let rng = new Rng(loop.seed);
  let initial;
  let runId: string;
  if (options.resume) {
    if (!fs.existsSync(configFile)) throw new InputError(`nothing to resume: ${dir} is not a tvlens run (it has no config.json)`);
    const saved = readJsonFile(configFile, "the run's config");
    // The run's own record identifies it (its state files carry that hash), even where today's
    // tvlens resolves the same config with more keys.
    cfgHash = configHash(saved);
    if (!sameRunConfig(saved, cfg)) throw new InputError(`the config differs from the one ${dir} was started with; resume with the same config`);
    const latest = latestCheckpoint(dir);
    if (!latest) {
      throw new InputError(`nothing to resume: ${dir} has no complete checkpoint yet (the run stopped before step ${Math.min(loop.checkpointEvery, loop.steps)}, its first); start it again without --resume`);
    }
    const info = fs.existsSync(runFile) ? (readJsonFile(runFile, "the run's id file") as Partial<RunInfo>) : null;
    const stateFile = `${latest.file}.state`;
    const state = readState(stateFile);
    const manifestFile = `${latest.file}.json`;
    const manifest = fs.existsSync(manifestFile) ? (readJsonFile(manifestFile, 'a checkpoint manifest') as Partial<Manifest>) : null;
    verifyState(stateFile, state, {
      step: latest.step,
      runId: typeof info?.runId === 'string' ? info.runId : undefined,
      configSha256: cfgHash,
      params: new Map(inferenceGraph(cfg.model, null).graph.params.map((p) => [p.value.name, p.data.length])),
      weightsSha256: typeof manifest?.weightsSha256 === 'string' ? manifest.weightsSha256 : undefined,
      hashWeights: weightsHash,
    });
    if (options.stopAfter !== undefined && options.stopAfter <= state.step) {
      throw new ConfigError(`${dir} is already at step ${state.step}; --stop-after must be later than that`, '--stop-after');
    }
    if (state.step >= loop.steps) throw new InputError(`nothing to resume: ${dir} finished all ${loop.steps} steps (${stateFile})`);
    runId = typeof info?.runId === 'string' ? info.runId : (state.runId ?? randomUUID());
    if (!info) writeJsonAtomic(runFile, { format: 'tvlens-run/1', runId, configSha256: cfgHash, created: new Date().toISOString() } satisfies RunInfo);
    rng = new Rng(state.rng);
    initial = state;
    truncateMetrics(metricsFile, state.step);
  } else {
    if (!isEmptyFolder(dir)) {
      const foreign = foreignEntries(dir);
      if (foreign.length) throw new InputError(`${dir} is not empty and holds files that are not a tvlens run (${listSome(foreign)}); choose another --out`);
      if (latestCheckpoint(dir)) throw new InputError(`${dir} already holds a run; pass --resume to continue it, or choose another --out`);
      // tvlens's own run that stopped before its first checkpoint: start it again, if it is the same config.
      const saved = fs.existsSync(configFile) ? readJsonFile(configFile, "the run's config") : null;
      if (saved !== null && !sameRunConfig(saved, cfg)) {
        throw new InputError(`${dir} holds an unfinished run of another config; choose another --out`);
      }
    }
    runId = randomUUID();
    writeJsonAtomic(configFile, cfg);
    writeJsonAtomic(runFile, { format: 'tvlens-run/1', runId, configSha256: cfgHash, created: new Date().toISOString() } satisfies RunInfo);
    fs.rmSync(metricsFile, { force: true });
  }
  const ids = { runId, configSha256: cfgHash };

  options.onBuild?.();
  const build = options.program ? () => options.program!(cfg, null) : () => iclLossProgram(cfg.model, null, 'float32', loop.demoKeep < 1);
  if (!initial) {
    const names = paramNames(cfg.model);
    const given = options.initialParams ?? new Map<string, TypedData>();
    for (const name of given.keys()) if (!names.includes(name)) throw new InputError(`the initial weights have a parameter '${name}' this model lacks`);
    // Drawn in slices (a large model's random init takes seconds), so that SIGTERM is served
    // meanwhile; not at all when a fine-tune gives every weight.
    const params = names.every((n) => given.has(n)) ? new Map<string, TypedData>() : await initialParams(cfg.model, loop.seed);
    for (const [name, data] of given) params.set(name, data);
    initial = freshState(params);
  }
  // Steps run on a worker thread, so that SIGTERM and progress are served during a step of a large model.
  const trainer = await Trainer.create(build, cfg.optimizer, { layout: loop.layout, initial, models: options.models, worker: true });
  const evalSession = await Session.open(toOnnxBytes(inferenceGraph(cfg.model, null).graph, { paramsAs: 'inputs' }));

  const end = Math.min(loop.steps, options.stopAfter ?? loop.steps);
  let lossSum = 0;
  let lossCount = 0;
  let last: MetricsLine | null = null;
  let lastCheckpoint = '';
  let tokens = 0;
  let t0 = performance.now();
  try {
    for (let step = trainer.state.step; step < end; step++) {
      const data = (options.sample ?? iclStepData)(cfg, rng, step);
      const lr = learningRate(cfg.optimizer, step, loop.steps);
      const { loss } = await trainer.step(data.feeds, lr);
      if (!Number.isFinite(loss)) {
        throw new TrainingDivergedError(
          `the loss became ${loss} at step ${step + 1}; stopped. The last good checkpoint is ${lastCheckpoint || latestCheckpoint(dir)?.file || '(none yet)'}; try a lower optimizer.lr`,
        );
      }
      lossSum += loss;
      lossCount++;
      tokens += data.tokens;
      const done = step + 1;
      const tokensPerSec = (tokens * 1000) / (performance.now() - t0);
      options.onStep?.({ step: done, total: loop.steps, loss, lr, tokensPerSec });
      const isLast = done === loop.steps;
      if (done % loop.evalEvery === 0 || isLast) {
        options.onEvalStart?.(done);
        const evalResult = await evaluate(cfg, evalSession, trainer.weights());
        last = { step: done, trainLoss: lossSum / lossCount, lr, tokensPerSec, eval: evalResult };
        appendLine(metricsFile, JSON.stringify(last));
        options.onEval?.(last);
        lossSum = lossCount = 0;
      }
      if (done % loop.checkpointEvery === 0 || isLast) {
        lastCheckpoint = saveCheckpoint(cfg, dir, trainer, rng, last, ids, options.manifestExtra).file;
        tokens = 0;
        t0 = performance.now();
      }
    }
  } finally {
    await trainer.release();
    await evalSession.release();
  }
  return { dir, steps: trainer.state.step, lastCheckpoint: lastCheckpoint || (latestCheckpoint(dir)?.file ?? ''), last };
}

function saveCheckpoint(cfg: RunConfig, dir: string, trainer: Trainer, rng: Rng, last: MetricsLine | null, ids: { runId: string; configSha256: string }, extra?: Record<string, unknown>): { file: string; manifest: Manifest } {
  const s = trainer.state;
  const file = stepFile(dir, s.step);
  // The state file first: a checkpoint counts (for --resume) once its .state exists.
  const manifest = writeCheckpoint(file, cfg.model, s.params, {
    step: s.step,
    seed: cfg.train.seed,
    task: cfg.task,
    train: { optimizer: cfg.optimizer, loop: cfg.train },
    metrics: last && last.step === s.step ? { train: { loss: last.trainLoss }, eval: last.eval } : {},
    extra,
  });
  writeState(`${file}.state`, { ...s, rng: rng.state(), ...ids });
  return { file, manifest };
}

/** ICL curves on fresh prompts from a fixed evaluation stream (the same prompts at every eval). */
export async function evaluate(
  cfg: RunConfig,
  session: Session,
  weights: Readonly<Record<string, HostTensor>>,
): Promise<{ train: ShotCurve; heldout?: ShotCurve }> {
  const run = async (split: 'train' | 'heldout') => {
    const rng = new Rng(cfg.train.seed + 0x5eed);
    const batch = sampleBatch(cfg.task, rng, cfg.train.evalPrompts, { split, demos: cfg.task.demos.max });
    // In slices of ~300 ms, so that a large model's evaluation still lets SIGTERM and progress through.
    const out = await session.runSliced({ ...weights, ...batchFeeds(batch, false) }, [outputName(cfg.model)], { whole: Object.keys(weights) });
    return shotCurve(batch.kind, scorePositions(batch, out[outputName(cfg.model)]));
  };
  return { train: await run('train'), ...(cfg.task.heldoutTasks > 0 ? { heldout: await run('heldout') } : {}) };
}

/** Appends one line; a full or read-only disk is one line naming the file. */
function appendLine(file: string, line: string): void {
  try {
    fs.appendFileSync(file, `${line}\n`);
  } catch (e) {
    const words = fsErrorWords(e);
    throw words ? new InputError(`cannot write ${file}: ${words}`) : e;
  }
}

/** Removes the temporaries a killed writer left (`*.<pid>.tmp`): under the lock, no live writer owns any. */
function removeStaleTemps(dir: string): void {
  for (const d of [dir, path.join(dir, 'checkpoints')]) {
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d)) if (isOwnTemp(f)) fs.rmSync(path.join(d, f), { force: true });
  }
}

/** Drops metrics lines past `step`, which a resumed run will write again, and a line torn by a kill. */
function truncateMetrics(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const kept = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => {
      try {
        return l && (JSON.parse(l) as MetricsLine).step <= step;
      } catch {
        return false;
      }
    });
  writeFileAtomic(file, kept.map((l) => `${l}\n`).join(''));
}
