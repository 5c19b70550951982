/**
 * `tvlens tv-search <checkpoint.onnx>`: task-vector prompting at every layer, per task and
 * averaged, with the zero-shot baseline, k-shot ICL and the best layer (dev → test). Also the
 * option parsing and model opening that `patch` and `locality` share: a tvlens checkpoint runs on
 * the fast Engine, a foreign model (with --hook-map and --task) on SourceEngine.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type AnalysisEngine, Engine, fromCheckpoint } from '../analysis/engine.js';
import { SourceEngine } from '../analysis/source-engine.js';
import { ModelSource } from '../analysis/source.js';
import { type TvSearchOptions, type TvSearchResult, tvSearch } from '../analysis/tv-search.js';
import { loadCheckpoint } from '../checkpoint/checkpoint.js';
import { ConfigError, InputError } from '../errors.js';
import { type TaskConfig, resolveTaskConfig } from '../tasks/index.js';
import { oneOf } from '../util/config.js';
import { writeJsonAtomic } from '../util/fs.js';
import { VERSION } from '../version.js';
import { loadTaskConfig, parseLayers } from './cache.js';
import { type Command, MEMORY_OPTION, type OptionSpec, integerListOption, integerOption, seedOption } from './command.js';
import { checkAnalysisMemory, checkInputFile, checkOutputFile, checkShots, checkTaskFits, isOwnJson } from './limits.js';
import { Progress } from './progress.js';

type Values = Record<string, string | boolean | string[] | undefined>;

/** Options every analysis on a checkpoint takes. */
export const MODEL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  task: { type: 'string', description: "task config: a preset, a run config or a task config file (default: the checkpoint's; required for a foreign model)" },
  'hook-map': { type: 'string', description: 'for a foreign model (an .onnx tvlens did not make): JSON map from its tensor names to hook names, naming the residual stream of every block (tvlens hooks suggests one)' },
  'pad-to': { type: 'string', description: 'for a foreign model whose export fixed the sequence length: run every prompt padded on the right to this length (exact for a causal model)' },
  split: { type: 'string', description: "'train' or 'heldout' tasks", default: 'train' },
  tasks: { type: 'string', description: 'at most this many tasks (the first of the split)' },
  shots: { type: 'string', description: "demos per prompt, k (default: the task config's largest)" },
  seed: { type: 'string', description: 'prompt seed', default: '0' },
  out: { type: 'string', description: 'also write the JSON result to this file' },
  threads: { type: 'string', description: 'ONNX Runtime threads (default: one per core)' },
  ...MEMORY_OPTION,
};

/** Options of the task-vector search, shared with locality. */
export const SEARCH_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  ...MODEL_OPTIONS,
  prompts: { type: 'string', description: 'demo prompts per task that θ averages over', default: '16' },
  dummies: { type: 'string', description: 'dummy queries per demo prompt (each demo set read with this many queries)', default: '1' },
  queries: { type: 'string', description: 'zero-shot queries per task: the first half is dev, the rest test', default: '64' },
  mode: { type: 'string', description: "'replace' the arrow state (Hendel et al.) or 'add' θ to it (function vectors)", default: 'replace' },
  center: { type: 'boolean', description: "with --mode add: subtract the mean of θ over tasks first" },
  position: { type: 'string', description: 'inject at this position counted back from the end: 0 = the last arrow, -1 the one before (write --position=-1)', default: '0' },
  layers: { type: 'string', description: 'layers to inject at, e.g. 0-4 or 1,3 (default: all, 0..L)' },
};

export function intOption(values: Values, key: string, min = 1): number | undefined {
  if (key === 'seed') return seedOption(values);
  return integerOption(values, key, { min, ...(key === 'threads' ? { max: 1024 } : {}) });
}

/** A model opened for an analysis, with its task config and what the output records of it. */
export interface OpenedModel {
  readonly engine: AnalysisEngine;
  readonly task: TaskConfig;
  /** The .onnx file. */
  readonly file: string;
  /** A checkpoint's training step; null for a foreign model. */
  readonly step: number | null;
  /** The JSON output's `model`. */
  readonly model: Readonly<Record<string, unknown>>;
  /** The table title's words on the model: its step and weights, or that it is foreign. */
  readonly note: string;
}

/**
 * Opens a model for the analyses: a tvlens checkpoint on the fast Engine, with its task config
 * (or --task); with --hook-map, a foreign model on SourceEngine, with --task (required: a foreign
 * model has no manifest), whose token ids must fit the model's vocabulary.
 */
export async function openModel(file: string, values: Values): Promise<OpenedModel> {
  const threads = intOption(values, 'threads');
  const hookMap = values['hook-map'] as string | undefined;
  const padTo = intOption(values, 'pad-to');
  if (typeof values.out === 'string') checkOutputFile(values.out, '--out', isOwnJson);
  checkInputFile(file, 'a model (.onnx) or its manifest (.json)');
  if (typeof values['hook-map'] === 'string') checkInputFile(values['hook-map'], 'a hook map (JSON)');
  if (hookMap === undefined) {
    if (padTo !== undefined) throw new ConfigError('applies to a foreign model, given with --hook-map', '--pad-to');
    if (!file.endsWith('.onnx') && !file.endsWith('.json')) throw new InputError(`${file} is not a checkpoint (.onnx with its .json manifest)`);
    if (file.endsWith('.onnx') && fs.existsSync(file) && !fs.existsSync(`${file.slice(0, -5)}.json`)) {
      throw new InputError(`${file} is not a tvlens checkpoint (no manifest beside it): to analyse a model tvlens did not make, give --hook-map map.json (\`tvlens hooks ${file}\` suggests one) and --task`);
    }
    const ck = loadCheckpoint(file);
    const task = values.task ? loadTaskConfig(values.task as string) : resolveTaskConfig(ck.manifest.task);
    if (values.task) checkTaskFits(task, ck.manifest.model, ck.file);
    checkShots(task, intOption(values, 'shots', 0), ck.manifest.model.maxSeq);
    checkAnalysisMemory(values, task, ck.manifest.model, { dModel: ck.manifest.model.dModel, layers: ck.manifest.model.layers, outWidth: ck.manifest.model.vocab });
    const { step, weightsSha256 } = ck.manifest;
    return {
      engine: Engine.open(fromCheckpoint(ck), { threads }),
      task,
      file: ck.file,
      step,
      model: { file: ck.file, step, weightsSha256, config: ck.manifest.model },
      note: `step ${step}, weights ${weightsSha256.slice(0, 12)}…`,
    };
  }
  const source = ModelSource.open(file, { hookMap, threads }); // a checkpoint given a hook map is an error here
  if (source.kind !== 'foreign') throw new InputError(`${file} is a tvlens checkpoint; drop --hook-map`);
  try {
    if (!values.task) throw new ConfigError(`${file} is a foreign model, which has no task config: name one (a preset or a task config file) whose vocab fits the model`, '--task');
    const task = loadTaskConfig(values.task as string);
    const engine = await SourceEngine.open(source, { padTo });
    engine.checkTask(task);
    checkAnalysisMemory(values, task, null, { dModel: engine.dims.dModel, layers: engine.layers, outWidth: engine.outWidth });
    return {
      engine,
      task,
      file: source.file,
      step: null,
      model: { kind: 'foreign', file: source.file, modelHash: source.modelHash, hookMap: path.resolve(hookMap), padTo: padTo ?? null, layers: source.layers, dModel: engine.dims.dModel, vocab: engine.outWidth, config: null },
      note: `foreign model, sha256 ${source.modelHash.slice(0, 12)}…, hooks from ${path.relative(process.cwd(), hookMap)}`,
    };
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** "2+3,1+2+3" → [[2, 3], [1, 2, 3]]. */
export function parseSets(text: string): number[][] {
  return text.split(',').map((part) => {
    if (!/^\s*\d+(\s*\+\s*\d+)*\s*$/.test(part)) throw new ConfigError(`'${part}' is not a layer set (like 2+3)`, '--sets');
    return part.split('+').map(Number);
  });
}

export function searchOptions(values: Values): TvSearchOptions {
  const position = integerOption(values, 'position', { max: 0 }) ?? 0; // 0 or counted back from the last position
  const seed = seedOption(values) ?? 0;
  return {
    split: oneOf(values.split as string, ['train', 'heldout'] as const, '--split'),
    maxTasks: intOption(values, 'tasks'),
    prompts: intOption(values, 'prompts'),
    dummies: intOption(values, 'dummies'),
    shots: intOption(values, 'shots'),
    queries: intOption(values, 'queries', 2),
    mode: oneOf(values.mode as string, ['replace', 'add'] as const, '--mode'),
    center: values.center === true,
    offset: position,
    layers: values.layers !== undefined ? parseLayers(values.layers as string) : undefined,
    seed,
  };
}

/** A progress bar per stage of a longer analysis. */
export function stageProgress(label: string, enabled: boolean): (stage: string, done: number, total: number) => void {
  let current = '';
  let bar: Progress | null = null;
  return (stage, done, total) => {
    if (stage !== current) [current, bar] = [stage, new Progress(`${label}: ${stage}`, total, enabled)];
    bar!.update(done);
  };
}

export function writeOut(values: Values, result: unknown): void {
  if (typeof values.out === 'string') writeJsonAtomic(path.resolve(values.out), result);
}

export const fmt = (x: number | null | undefined, digits = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

/** The readable table: one row per task and the average, one column per layer. */
export function searchTable(r: TvSearchResult): string {
  const o = r.options;
  const head = [
    `metric: ${r.metric} (${r.metric === 'accuracy' ? 'higher' : 'lower'} is better); mode ${o.mode}${o.center ? ' (centred)' : ''}; θ from ${o.prompts} demo prompts × ${o.dummies} dummies per task, ${o.shots} demos; ${o.queries} zero-shot queries per task (half dev, half test)`,
    `injected at position ${r.positions.zeroShot} of the zero-shot prompt (θ read at ${r.positions.demo} of the demo prompts); ${r.convention}`,
    '',
  ];
  const name = Math.max(8, ...r.tasks.map((t) => t.task.name.length));
  const cols = ['0-shot', `ICL`, ...o.layers.map((l) => `ℓ=${l}`), ...o.sets.map((s) => `ℓ=${s.join('+')}`), 'best ℓ', 'dev', 'test'];
  const line = (label: string, cells: string[]) => `${label.padEnd(name)}  ${cells.map((c) => c.padStart(Math.max(6, c.length))).join(' ')}`;
  const rows = [line('task', cols)];
  const row = (label: string, t: Pick<TvSearchResult['average'], 'baseline' | 'curve' | 'sets' | 'best'> & { icl: { mean: number } }) =>
    line(label, [fmt(t.baseline.all.mean), fmt(t.icl.mean), ...t.curve.map((c) => fmt(c.all.mean)), ...t.sets.map((c) => fmt(c.all.mean)), String(t.best.layer), fmt(t.best.dev), fmt(t.best.test)]);
  for (const t of r.tasks) rows.push(row(t.task.name, t));
  rows.push(row('average', r.average));
  const ci = r.average.curve.map((c) => `ℓ=${c.layers[0]} [${fmt(c.all.low)}, ${fmt(c.all.high)}]`).join('  ');
  const tail = [
    '',
    `95% intervals of the average over ${r.tasks.length} tasks: ${ci}`,
    `best layer per task on dev, scored on test: mean ${fmt(r.average.bestPerTask.mean)} [${fmt(r.average.bestPerTask.low)}, ${fmt(r.average.bestPerTask.high)}]`,
    ...r.average.combined.map((c, i) => `best ${o.combine[i]} layers together (per task, on dev): test ${fmt(c.test)}`),
  ];
  return [...head, ...rows, ...tail].join('\n');
}

export const tvSearchCommand: Command = {
  name: 'tv-search',
  summary: 'find the layer whose task vector makes zero-shot prompts solve the task (task-vector prompting)',
  usage: 'tvlens tv-search <checkpoint.onnx | model.onnx --hook-map map.json --task preset> [--layers 0-4] [--mode replace|add] [--sets 2+3] [--prompts 16] [--queries 64] [--json]',
  options: {
    ...SEARCH_OPTIONS,
    sets: { type: 'string', description: 'layer sets injected together, e.g. 2+3,1+2+3' },
    combine: { type: 'string', description: "inject each task's best k layers (on dev) together, for each k listed, e.g. 2,3" },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new InputError(`expected one model, got ${positionals.length}. Usage: ${tvSearchCommand.usage}`);
    const { engine, task, file, model, note } = await openModel(positionals[0], values);
    try {
      const options: TvSearchOptions = {
        ...searchOptions(values),
        sets: values.sets !== undefined ? parseSets(values.sets as string) : undefined,
        combine: integerListOption(values, 'combine', { min: 1 }),
        onProgress: stageProgress('tv-search', !values.json),
      };
      const result = await tvSearch(engine, task, options);
      const full = { ...result, tvlensVersion: VERSION, model, task };
      writeOut(values, full);
      if (values.json) console.log(JSON.stringify(full));
      else console.log(`tv-search ${path.relative(process.cwd(), file)} (${note})\n${searchTable(result)}`);
    } finally {
      await engine.release();
    }
  },
};
