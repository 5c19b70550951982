/**
 * A training run's config: model, task, optimizer and loop settings, each its own typed config.
 * Presets are JSON files in src/presets/; `loadRunConfig` takes a preset name or a file path.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { type ModelConfig, resolveModelConfig } from '../model/config.js';
import { type TaskConfig, resolveTaskConfig, taskIO, taskList, promptLength } from '../tasks/index.js';

const MAX_EVAL_PROMPTS = 100_000;
import { oneOf, resolveConfig } from '../util/config.js';
import { PACKAGE_ROOT } from '../version.js';
import { type OptimizerConfig, resolveOptimizerConfig } from './optimizer.js';

export interface LoopConfig {
  /** Optimizer steps. */
  steps: number;
  /** Prompts per step. */
  batchSize: number;
  /** Seed of the weights' initialisation and of the training data stream. */
  seed: number;
  /** Evaluate every this many steps (and after the last). */
  evalEvery: number;
  /** Held-out prompts per evaluation, for each of train tasks and held-out tasks. */
  evalPrompts: number;
  /** Write a checkpoint every this many steps (and after the last). */
  checkpointEvery: number;
  /** 'fused' (one ONNX Runtime call per step) or 'split' (training model + optimizer model). */
  layout: 'fused' | 'split';
  /**
   * Token-wise dropout on the demonstrations (Dong et al. 2026): each token before the query's
   * block keeps its embedding with this probability and is zeroed otherwise, independently, at
   * every training step; the query's block is never dropped. 1 turns it off. Default 1.
   */
  demoKeep: number;
  /**
   * Sequence families (hmm, dfa) only: every symbol of each x after its first is a target too
   * (next-symbol prediction inside the strings), as GINC (Xie et al. 2021) and RegBench (Akyürek
   * et al. 2024) train language models on every token. The answers stay targets; evaluation still
   * scores only the answers. Default false.
   */
  lmLoss: boolean;
}

export const LOOP_DEFAULTS: Readonly<LoopConfig> = Object.freeze({
  steps: 1000,
  batchSize: 64,
  seed: 0,
  evalEvery: 100,
  evalPrompts: 256,
  checkpointEvery: 500,
  layout: 'fused',
  demoKeep: 1,
  lmLoss: false,
});

export interface RunConfig {
  /** The model's input and output sizes are filled in from the task. */
  model: ModelConfig;
  task: TaskConfig;
  optimizer: OptimizerConfig;
  train: LoopConfig;
}

const TOP_KEYS = ['model', 'task', 'optimizer', 'train', 'description'];

/**
 * Whether a run folder's saved config (resolved by the tvlens that started the run) is `cfg`.
 * Both are compared as today's tvlens resolves them, so that a key added since, with its default,
 * does not stop a run from resuming.
 */
export function sameRunConfig(saved: unknown, cfg: RunConfig): boolean {
  try {
    return JSON.stringify(resolveRunConfig(saved)) === JSON.stringify(cfg);
  } catch {
    return false;
  }
}

export function resolveRunConfig(user: unknown): RunConfig {
  if (typeof user !== 'object' || user === null || Array.isArray(user)) throw new ConfigError('a run config must be a JSON object');
  const top = user as Record<string, unknown>;
  for (const key of Object.keys(top)) {
    if (!TOP_KEYS.includes(key)) throw new ConfigError(`unknown key. Should be one of: ${TOP_KEYS.join(', ')}`, key);
  }
  const task = resolveTaskConfig(top.task);
  const io = taskIO(task);
  const model = resolveModelConfig({
    ...(top.model as object),
    input: io.input,
    output: io.output === 'logits' ? 'logits' : 'vector',
    ...(io.input === 'tokens' ? { vocab: io.vocabSize } : { dIn: io.dIn, dOut: io.outDim }),
  });
  const train = resolveConfig(LOOP_DEFAULTS, top.train, 'train');
  oneOf(train.layout, ['fused', 'split'], 'train.layout');
  for (const key of ['steps', 'batchSize', 'evalEvery', 'evalPrompts', 'checkpointEvery'] as const) {
    if (!Number.isInteger(train[key]) || train[key] < 1) throw new ConfigError(`must be a positive integer, got ${train[key]}`, `train.${key}`);
  }
  if (!(train.demoKeep > 0 && train.demoKeep <= 1)) throw new ConfigError(`is a keep-probability in (0, 1], got ${train.demoKeep}`, 'train.demoKeep');
  if (train.lmLoss && !(task.kind === 'hmm' || task.kind === 'dfa')) throw new ConfigError(`trains next-symbol prediction inside multi-token x's: for the sequence families (hmm, dfa), not '${task.kind}'`, 'train.lmLoss');
  if (!Number.isInteger(train.seed) || train.seed < 0 || train.seed > 2 ** 32 - 1) throw new ConfigError(`must be an integer 0..${2 ** 32 - 1} (seeds are 32-bit), got ${train.seed}`, 'train.seed');
  const longest = promptLength(task, task.demos.max);
  if (longest > model.maxSeq) {
    throw new ConfigError(`prompts with ${task.demos.max} demos are ${longest} positions long, more than model.maxSeq ${model.maxSeq}`, 'model.maxSeq');
  }
  // The evaluation draws all its prompts at once: bounded like any batch, so 1e8 is refused here, not by V8.
  if (train.evalPrompts > MAX_EVAL_PROMPTS) throw new ConfigError(`must be at most ${MAX_EVAL_PROMPTS} (the evaluation holds its prompts at once), got ${train.evalPrompts}`, 'train.evalPrompts');
  // The task universe (its train and held-out pools) is built now, so an impossible one (trainTasks
  // beyond what the families hold) is refused before a run folder is touched, not after.
  taskList(task, 'heldout');
  return { model, task, optimizer: resolveOptimizerConfig(top.optimizer), train };
}

export const PRESET_DIR = path.join(PACKAGE_ROOT, 'src', 'presets');

export function presetNames(): string[] {
  return fs.readdirSync(PRESET_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
}

/** A run config from a preset name (`tiny`, `small-discrete`, …) or a JSON file path. */
export function loadRunConfig(nameOrFile: string): RunConfig {
  const file = fs.existsSync(nameOrFile) ? nameOrFile : path.join(PRESET_DIR, `${nameOrFile}.json`);
  if (!fs.existsSync(file)) {
    throw new ConfigError(`'${nameOrFile}' is neither a file nor a preset. Presets: ${presetNames().join(', ')}`, '--config');
  }
  let json: unknown;
  try {
    if (fs.statSync(file).isDirectory()) throw new ConfigError(`${file} is a folder, not a config file`, '--config');
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${file} is not valid JSON: ${(e as Error).message.split('\n')[0]}`, '--config');
  }
  return resolveRunConfig(json);
}
