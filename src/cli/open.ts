/**
 * What the analysis commands share: their options, and opening a model for them through the
 * library's `openModel` (the CLI is the library's first user). A checkpoint analyses on its own
 * task config (or --task); a foreign model (--hook-map) needs --task, or your own prompts
 * (--prompts-file) where the command takes them.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TvSearchOptions } from '../analysis/tv-search.js';
import { type Model, openModel as openLibraryModel } from '../api/model.js';
import { readManifest } from '../checkpoint/checkpoint.js';
import { ConfigError, InputError } from '../errors.js';
import { type TaskConfig, resolveTaskConfig } from '../tasks/index.js';
import { type PromptRecord, readPromptsFile } from '../tasks/prompt-file.js';
import { isModelFolder } from '../backend/model-folder.js';
import { PROMPT_FORMATS, SCORING, TEXT_TASKS } from '../text/tasks.js';
import { writeJsonAtomic } from '../util/fs.js';
import { loadTaskConfig } from './cache.js';
import { MEMORY_OPTION, SPLIT_OPTION, THREADS_OPTION, type Values, choice, flag, indexList, int, refuseDrawingFlags, refuseGiven, seed, text, toInteger } from './command.js';
import { checkAnalysisMemory, checkInputFile, checkOutputFile, checkShots, checkTaskFits, isOwnJson } from './limits.js';
import { Progress } from './progress.js';

/** Options every analysis on a checkpoint takes. */
export const MODEL_OPTIONS = {
  task: text("task config: a preset, a run config or a task config file (default: the checkpoint's; required for a foreign model)"),
  'hook-map': text('for a foreign model (an .onnx tvlens did not make): JSON map from its tensor names to hook names, naming the residual stream of every block (tvlens hooks suggests one)'),
  'pad-to': int('for a foreign model whose export fixed the sequence length: run every prompt padded on the right to this length (exact for a causal model)'),
  format: choice(`for a model folder's text task: prompt format, ${PROMPT_FORMATS.join(' or ')} (hendel: example:x->y lines; todd: Q: x / A: y)`, PROMPT_FORMATS, 'hendel'),
  ...SPLIT_OPTION,
  tasks: int('at most this many tasks (the first of the split)'),
  shots: int("demos per prompt, k (default: the task config's largest)"),
  seed: seed('prompt seed', 0),
  out: text('also write the JSON result to this file'),
  ...THREADS_OPTION,
  ...MEMORY_OPTION,
} as const;

/** --prompts-file, for the commands that take your own prompts. */
export const PROMPTS_FILE_OPTION = {
  'prompts-file': text('your own prompts instead of --task: JSONL, one prompt per line (README, "Prompts files"); works on any model that takes token ids'),
} as const;

/** Options of the task-vector search, shared with locality. */
export const SEARCH_OPTIONS = {
  ...MODEL_OPTIONS,
  prompts: int('demo prompts per task that θ averages over', { min: 1 }, 16),
  dummies: int('dummy queries per demo prompt (each demo set read with this many queries)', { min: 1 }, 1),
  queries: int('zero-shot queries per task: the first half is dev, the rest test', { min: 2 }, 64),
  mode: choice("'replace' the arrow state (Hendel et al.) or 'add' θ to it (function vectors)", ['replace', 'add'] as const, 'replace'),
  center: flag('with --mode add: subtract the mean of θ over tasks first'),
  position: int('inject at this position counted back from the end: 0 = the last arrow, -1 the one before (write --position=-1)', { max: 0 }, 0),
  layers: indexList('layers to inject at, e.g. 0-4 or 1,3 (default: all, 0..L)'),
} as const;

/** What opening a model for an analysis reads of a command's values. */
export type AnalysisValues = Values<typeof MODEL_OPTIONS> & Partial<Values<typeof PROMPTS_FILE_OPTION>> & { readonly prompts?: number; readonly dummies?: number; readonly queries?: number };

/** A model opened for an analysis, with its task config and what the output records of it. */
export interface OpenedModel {
  /** The library's Model: the command calls its methods, and closes it when done. */
  readonly handle: Model;
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

/** A model opened for an analysis that also takes --prompts-file: its task config is then optional. */
export interface OpenedForPrompts extends Omit<OpenedModel, 'task'> {
  readonly task: TaskConfig | null;
  /** The prompts of --prompts-file, checked against the model's vocabulary; null without it. */
  readonly prompts: readonly PromptRecord[] | null;
  /** A text task's k-shot prompts with their shuffled-label twins (for patching); null unless the model is a folder given a text task. */
  readonly pairs?: readonly PromptRecord[] | null;
}

/**
 * Opens a model for the analyses through the library (`openModel`): a tvlens checkpoint on the
 * fast GraphBackend, with its task config (or --task); with --hook-map, a foreign model whose graph is
 * split at each patched residual, with --task (required: a foreign model has no manifest), whose
 * token ids must fit the model's vocabulary.
 */
export async function openModel(file: string, values: AnalysisValues): Promise<OpenedModel> {
  const opened = await open(file, values, false);
  return { ...opened, task: opened.task! };
}

/** As `openModel`, for commands that take --prompts-file instead of --task. */
export function openForPrompts(file: string, values: AnalysisValues): Promise<OpenedForPrompts> {
  return open(file, values, true);
}

async function open(file: string, values: AnalysisValues, promptsAllowed: boolean): Promise<OpenedForPrompts> {
  const { threads, 'hook-map': hookMap, 'pad-to': padTo } = values;
  const promptsFile = promptsAllowed ? values['prompts-file'] : undefined;
  if (values.out !== undefined) checkOutputFile(values.out, '--out', isOwnJson);
  if (isModelFolder(file)) return openFolder(file, values, promptsAllowed);
  checkInputFile(file, 'a model (.onnx) or its manifest (.json)');
  refuseGiven(values, ['format'], "applies to a model folder's text tasks");
  if (hookMap !== undefined) checkInputFile(hookMap, 'a hook map (JSON)');
  if (promptsFile !== undefined) {
    checkInputFile(promptsFile, 'a prompts file (JSONL)');
    refuseDrawingFlags(values);
  }
  const prompts = promptsFile !== undefined ? readPromptsFile(promptsFile) : null;
  if (hookMap === undefined) {
    if (padTo !== undefined) throw new ConfigError('applies to a foreign model, given with --hook-map', '--pad-to');
    if (!file.endsWith('.onnx') && !file.endsWith('.json')) throw new InputError(`${file} is not a checkpoint (.onnx with its .json manifest)`);
    if (file.endsWith('.onnx') && fs.existsSync(file) && !fs.existsSync(`${file.slice(0, -5)}.json`)) {
      throw new InputError(`${file} is not a tvlens checkpoint (no manifest beside it): to analyse a model tvlens did not make, give --hook-map map.json (\`tvlens hooks ${file}\` suggests one) and --task`);
    }
  }
  const handle = await openLibraryModel(file, { hookMap, threads, padTo }); // a checkpoint given a hook map is an error here
  try {
    // Without a hook map the file must be a checkpoint: a JSON beside it that is not its manifest says why not.
    if (hookMap === undefined && handle.kind !== 'tvlens') {
      readManifest(file);
      throw new InputError(`${file} is not a tvlens checkpoint: to analyse a model tvlens did not make, give --hook-map map.json and --task`);
    }
    if (hookMap !== undefined && handle.kind !== 'foreign') throw new InputError(`${file} is a tvlens checkpoint; drop --hook-map`);
    if (prompts) handle.checkFits(prompts);
    const dims = { dModel: handle.dModel ?? 0, layers: handle.layers, outWidth: handle.outWidth };
    if (handle.kind === 'tvlens') {
      const manifest = handle.manifest!;
      const task = prompts ? null : values.task ? loadTaskConfig(values.task) : resolveTaskConfig(manifest.task);
      if (task) {
        if (values.task) checkTaskFits(task, manifest.model, handle.file);
        checkShots(task, values.shots, manifest.model.maxSeq);
        checkAnalysisMemory(values, task, manifest.model, dims);
      }
      const { step, weightsSha256 } = manifest;
      return {
        task,
        prompts,
        handle,
        file: handle.file,
        step,
        model: { file: handle.file, step, weightsSha256, config: manifest.model, ...(promptsFile ? { promptsFile: path.resolve(promptsFile) } : {}) },
        note: `step ${step}, weights ${weightsSha256.slice(0, 12)}…`,
      };
    }
    if (!prompts && !values.task) {
      throw new ConfigError(`${file} is a foreign model, which has no task config: name one (a preset or a task config file) whose vocab fits the model${promptsAllowed ? ', or give your own prompts with --prompts-file' : ''}`, '--task');
    }
    const task = prompts ? null : loadTaskConfig(values.task!);
    if (task) {
      handle.checkFits(task);
      checkAnalysisMemory(values, task, null, dims);
    }
    return {
      task,
      prompts,
      handle,
      file: handle.file,
      step: null,
      model: {
        kind: 'foreign',
        file: handle.file,
        modelHash: handle.modelHash,
        hookMap: path.resolve(hookMap!),
        padTo: padTo ?? null,
        layers: handle.layers,
        dModel: handle.dModel,
        vocab: handle.outWidth,
        config: null,
        ...(promptsFile ? { promptsFile: path.resolve(promptsFile) } : {}),
      },
      note: `foreign model, sha256 ${handle.modelHash.slice(0, 12)}…, hooks from ${path.relative(process.cwd(), hookMap!)}`,
    };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/**
 * A model folder (model.onnx, tokenizer.json, config.json): hooks suggested from its graph unless
 * --hook-map is given, and prompts from a text task (--task: a shipped task or a pairs file) in
 * --format, or from --prompts-file.
 */
async function openFolder(dir: string, values: AnalysisValues, promptsAllowed: boolean): Promise<OpenedForPrompts> {
  const { threads, 'hook-map': hookMap, 'pad-to': padTo } = values;
  const promptsFile = promptsAllowed ? values['prompts-file'] : undefined;
  refuseGiven(values, ['split', 'tasks', 'max-memory'], 'does not apply to a model folder, whose prompts come from text tasks (--task) or --prompts-file');
  if (promptsFile !== undefined) refuseDrawingFlags(values);
  if (promptsFile === undefined && values.task === undefined) throw new ConfigError(`${dir} is a model folder: name a text task (${TEXT_TASKS.join(', ')}, or a JSON/JSONL file of {"x", "y"} pairs)`, '--task');
  const handle = await openLibraryModel(dir, { hookMap, threads, padTo });
  try {
    let prompts: readonly PromptRecord[];
    let pairs: readonly PromptRecord[] | null = null;
    let scoring = '';
    if (promptsFile !== undefined) prompts = readPromptsFile(promptsFile);
    else {
      const format = values.format;
      const text = handle.textPrompts({ task: values.task!.split(','), format, shots: values.shots, prompts: values.prompts, seed: values.seed });
      prompts = text.search;
      pairs = text.pairs;
      scoring = `; ${format} prompts, ${SCORING}; pairs kept: ${text.kept.map((k) => `${k.task} ${k.kept}/${k.total}`).join(', ')}`;
    }
    handle.checkFits(prompts);
    return {
      task: null,
      prompts,
      pairs,
      handle,
      file: handle.file,
      step: null,
      model: { kind: 'foreign', folder: path.resolve(dir), file: handle.file, modelHash: handle.modelHash, hookMap: hookMap ? path.resolve(hookMap) : 'suggested', padTo: padTo ?? null, layers: handle.layers, dModel: handle.dModel, vocab: handle.outWidth, config: null, task: values.task ?? null, format: values.format },
      note: `model folder, sha256 ${handle.modelHash.slice(0, 12)}…, hooks ${hookMap ? `from ${path.relative(process.cwd(), hookMap)}` : 'suggested from the graph'}${scoring}`,
    };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** "2+3,1+2+3" → [[2, 3], [1, 2, 3]]. */
export function parseSets(text: string): number[][] {
  return text.split(',').map((part) => {
    if (!/^\s*\d+(\s*\+\s*\d+)*\s*$/.test(part)) throw new ConfigError(`'${part}' is not a layer set (like 2+3)`, '--sets');
    const set = part.split('+').map((l) => toInteger(l, '--sets', { min: 0, max: 100_000 }));
    if (new Set(set).size !== set.length) throw new ConfigError(`'${part.trim()}' names a layer twice`, '--sets');
    return set;
  });
}

export function searchOptions(values: Values<typeof SEARCH_OPTIONS>): TvSearchOptions {
  return {
    split: values.split,
    maxTasks: values.tasks,
    prompts: values.prompts,
    dummies: values.dummies,
    shots: values.shots,
    queries: values.queries,
    mode: values.mode,
    center: values.center,
    offset: values.position, // 0 or counted back from the last position
    layers: values.layers,
    seed: values.seed,
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

export function writeOut(values: { readonly out?: string }, result: unknown): void {
  if (values.out !== undefined) writeJsonAtomic(path.resolve(values.out), result);
}

export const fmt = (x: number | null | undefined, digits = 2): string => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

