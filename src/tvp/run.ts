/**
 * `tvlens tvp`: TVP-loss training from scratch (from a config) or as a fine-tune (from a
 * checkpoint, with its weights and a fresh optimizer state). It writes the training artifacts,
 * then trains THROUGH them (the models read back from disk), writing checkpoints, metrics and
 * manifests as `tvlens train` does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadCheckpoint } from '../checkpoint/checkpoint.js';
import { readBundle } from '../checkpoint/bundle.js';
import { ConfigError, InputError } from '../errors.js';
import type { TypedData } from '../graph/index.js';
import { type RunConfig, loadRunConfig, resolveRunConfig } from '../train/config.js';
import { dMlpOf } from '../model/config.js';
import { promptLength } from '../tasks/index.js';
import { latestCheckpoint } from '../runs/folder.js';
import { type RunSummary, type TrainOptions, train } from '../train/loop.js';
import { foreignEntries, isEmptyFolder, listSome } from '../train/run-folder.js';
import { readJsonFile, writeJsonAtomic } from '../util/fs.js';
import { lockRunFolder } from '../util/lock.js';
import { checkMemory, trainingMemory } from '../util/memory.js';
import { ARTIFACT_FILES, readArtifacts, writeArtifacts } from './artifacts.js';
import { tvpStepData } from './data.js';
import { type TvpConfig, resolveTvpConfig, tvpLossProgram } from './loss.js';

export interface TvpRunOptions extends Pick<TrainOptions, 'onStep' | 'onEval' | 'stopAfter'> {
  /** A checkpoint (.onnx or .json) to fine-tune, or a preset name / config file to train from scratch. */
  readonly from: string;
  readonly out: string;
  /** TVP options (layer, lambda, …), validated against the model. */
  readonly tvp: Partial<TvpConfig>;
  /** Overrides train.steps. */
  readonly steps?: number;
  /** Overrides train.seed. */
  readonly seed?: number;
  readonly resume?: boolean;
}

/** The run config and the starting weights for `from`. */
export function tvpSource(from: string, steps?: number, seed?: number): { run: RunConfig; initial?: Map<string, TypedData>; kind: 'fine-tune' | 'from-scratch' } {
  if (fs.statSync(from, { throwIfNoEntry: false })?.isDirectory()) throw new InputError(`--from ${from} is a folder; give a checkpoint (.onnx), a preset or a config file`);
  const isCheckpoint = from.endsWith('.onnx') || (from.endsWith('.json') && fs.existsSync(from) && !!(readJsonFile(from, 'a checkpoint manifest or run config') as { format?: unknown } | null)?.format);
  let run: RunConfig;
  let initial: Map<string, TypedData> | undefined;
  if (isCheckpoint) {
    const c = loadCheckpoint(from);
    const trainCfg = (c.manifest.train ?? {}) as { optimizer?: unknown; loop?: unknown };
    run = resolveRunConfig({ model: c.manifest.model, task: c.manifest.task, optimizer: trainCfg.optimizer, train: trainCfg.loop });
    initial = c.params;
  } else {
    run = loadRunConfig(from);
  }
  run = resolveRunConfig({ ...run, train: { ...run.train, ...(steps !== undefined ? { steps } : {}), ...(seed !== undefined ? { seed } : {}) } });
  return { run, initial, kind: isCheckpoint ? 'fine-tune' : 'from-scratch' };
}

/**
 * Whether a TVP run's saved tvp.json records these options, its TVP config resolved as today's
 * tvlens resolves it (as `sameRunConfig` does for the run config), so a key added since does not
 * stop the run from resuming.
 */
function sameRecord(saved: unknown, recorded: { tvp: TvpConfig; from: string; kind: string }, run: RunConfig): boolean {
  try {
    const s = saved as typeof recorded;
    return JSON.stringify({ ...s, tvp: resolveTvpConfig(s.tvp, run) }) === JSON.stringify(recorded);
  } catch {
    return false;
  }
}

export async function runTvp(options: TvpRunOptions & { maxMemory?: number }): Promise<RunSummary & { tvp: TvpConfig; kind: string }> {
  const { run, initial, kind } = tvpSource(options.from, options.steps, options.seed);
  const tvp = resolveTvpConfig(options.tvp, run);
  const artifacts = path.join(options.out, 'artifacts');
  const recorded = { tvp, from: options.from, kind };
  const tvpFile = path.join(options.out, 'tvp.json');
  // Everything is checked before anything is written: the memory, then (locked) the folder.
  if (run.train.demoKeep < 1) throw new ConfigError(`token-wise demo dropout (${run.train.demoKeep}) is for plain ICL training; TVP-loss runs take demoKeep 1`, 'train.demoKeep');
  const m = run.model;
  checkMemory(
    trainingMemory({ ...m, dMlp: dMlpOf(m) }, run.train.batchSize, promptLength(run.task, run.task.demos.max), 2),
    'TVP training of this model',
    'lower model.dModel, model.layers or train.batchSize',
    options.maxMemory,
  );
  const st = fs.statSync(options.out, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) throw new InputError(`${options.out} is a file; --out must be a run folder`);
  if (options.resume && !st) throw new InputError(`nothing to resume: ${options.out} does not exist`);
  const release = lockRunFolder(options.out);
  try {
    if (options.resume) {
      if (!fs.existsSync(tvpFile)) throw new InputError(`nothing to resume: ${options.out} is not a TVP run`);
      if (!sameRecord(readJsonFile(tvpFile, "the TVP run's options"), recorded, run)) {
        throw new InputError(`the TVP options differ from the ones ${options.out} was started with; resume with the same options`);
      }
    } else {
      if (!isEmptyFolder(options.out)) {
        const foreign = foreignEntries(options.out);
        if (foreign.length) throw new InputError(`${options.out} is not empty and holds files that are not a tvlens run (${listSome(foreign)}); choose another --out`);
        const same = fs.existsSync(tvpFile) && sameRecord(readJsonFile(tvpFile, "the TVP run's options"), recorded, run);
        if (latestCheckpoint(options.out) || !same) throw new InputError(`${options.out} already holds a run; pass --resume to continue a TVP run, or choose another --out`);
      }
      writeArtifacts(artifacts, run, tvp, initial);
      writeJsonAtomic(tvpFile, recorded);
    }
    const start = readBundle(path.join(artifacts, ARTIFACT_FILES.checkpoint));
    const summary = await train(run, options.out, {
      resume: options.resume,
      stopAfter: options.stopAfter,
      onStep: options.onStep,
      onEval: options.onEval,
      models: readArtifacts(artifacts),
      program: (c, seed) => tvpLossProgram(c, tvp, seed),
      sample: (c, rng, step) => tvpStepData(c, tvp, rng, step),
      initialParams: new Map([...start.tensors].filter(([k]) => !k.startsWith('adam.')).map(([k, t]) => [k, t.data])),
      manifestExtra: { tvp: recorded },
      maxMemory: options.maxMemory,
    });
    return { ...summary, tvp, kind };
  } finally {
    release();
  }
}
