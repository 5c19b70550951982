/**
 * `tvlens cache`: run prompts through a model and stream chosen hooks to an Arrow IPC file.
 * `tvlens cache-info`: what a cache holds, and whether it was made from a given model.
 */
import fs from 'node:fs';
import path from 'node:path';
import { holdsModel, readModelFolder } from '../backend/model-folder.js';
import { PROMPT_FORMATS, textPrompts } from '../text/tasks.js';
import { TextTokenizer } from '../text/tokenizer.js';
import { parsePositions, readCache } from '../analysis/cache.js';
import { openModel } from '../api/model.js';
import { readInitializers, readOnnxFile, weightsHash } from '../checkpoint/checkpoint.js';
import { ConfigError, InputError } from '../errors.js';
import { type TaskConfig, resolveTaskConfig } from '../tasks/index.js';
import { type PromptRecord, maxTokenId, readPromptsFile, recordsToBatch } from '../tasks/prompt-file.js';
import { loadRunConfig, presetNames } from '../train/config.js';
import { SPLIT_OPTION, THREADS_OPTION, type Values, choice, command, custom, indexList, int, refuseDrawingFlags, required, seed, text } from './command.js';
import { checkInputFile, checkOutputFile, checkShots, checkTaskFits, isArrowFile } from './limits.js';
import { Progress } from './progress.js';

/** A task config from a preset, a run config file (its "task"), or a task config file. */
export function loadTaskConfig(nameOrFile: string): TaskConfig {
  if (!fs.existsSync(nameOrFile)) return loadRunConfig(nameOrFile).task;
  if (fs.statSync(nameOrFile).isDirectory()) throw new ConfigError(`${nameOrFile} is a folder, not a task config`, '--task');
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(nameOrFile, 'utf8'));
  } catch (e) {
    throw new ConfigError(`${nameOrFile} is not valid JSON: ${(e as Error).message}`, '--task');
  }
  return typeof json === 'object' && json !== null && 'task' in json ? loadRunConfig(nameOrFile).task : resolveTaskConfig(json);
}

const CACHE_OPTIONS = {
  out: text('the Arrow IPC file to write'),
  'hook-map': text('for a foreign model: JSON map from tensor names to hook names'),
  hooks: text("comma-separated hook names or globs (blocks.*.hook_resid_post); 'resid' = the residual stream at every task-vector layer", 'resid'),
  blocks: indexList('keep only hooks of these blocks (block indices, 0,2 or 0-1); drops hooks outside the blocks'),
  positions: custom(
    "'last-arrow' (each prompt's query), 'arrows' (every scored position), 'all', or indices, negative from the end (write --positions=-1)",
    (t, f) => {
      try {
        return parsePositions(t);
      } catch (e) {
        throw new ConfigError((e as Error).message, f); // the library's words, naming the flag
      }
    },
    parsePositions('last-arrow'),
  ),
  prompts: int('number of prompts drawn from --task', { min: 1 }, 256),
  seed: seed('prompt seed', 0),
  demos: int("demos per prompt (default: the task config's largest)", { min: 0 }),
  ...SPLIT_OPTION,
  format: choice(`a model folder's text task: prompt format, ${PROMPT_FORMATS.join(' or ')}`, PROMPT_FORMATS, 'hendel'),
  task: text(`a model folder: text tasks (comma-separated shipped names or pairs files); otherwise a task config: a preset (${presetNames().join(', ')}), a run config or a task config file (default: the checkpoint's; required for a foreign model)`),
  'prompts-file': text('your own prompts instead of --task: JSONL, one prompt per line (README, "Prompts files"); a line\'s position is its last-arrow'),
  chunk: int('prompts per forward pass and per Arrow record batch', { min: 1 }, 32),
  ...THREADS_OPTION,
} as const;

export const cacheCommand = command({
  name: 'cache',
  summary: 'run prompts through a model and stream chosen hooks to an Arrow IPC file',
  usage: 'tvlens cache <model.onnx> --out cache.arrow [--hooks resid] [--blocks 0-1] [--positions last-arrow] [--prompts 256 | --prompts-file p.jsonl] [--seed 0]',
  options: CACHE_OPTIONS,
  async run(values, positionals) {
    if (positionals.length !== 1) throw new InputError(`expected one model file, got ${positionals.length}. Usage: ${cacheCommand.usage}`);
    const given0 = required(values.out, 'out');
    checkOutputFile(given0, '--out', isArrowFile); // before resolve, which drops a trailing '/'
    const out = path.resolve(given0);
    const folder = holdsModel(positionals[0]);
    if (!folder) checkInputFile(positionals[0], 'an ONNX model');
    const { prompts, seed, demos, chunk, blocks, split, 'prompts-file': promptsFile } = values;
    if (promptsFile !== undefined) {
      checkInputFile(promptsFile, 'a prompts file (JSONL)');
      refuseDrawingFlags(values, ['prompts', 'seed', 'demos', 'split']);
    }
    // A model folder given a text task caches its k-shot prompts (at their last position).
    const text = folder && promptsFile === undefined && values.task !== undefined;
    const records = promptsFile !== undefined ? readPromptsFile(promptsFile) : text ? folderPrompts(positionals[0], values, prompts) : null;
    const given = records ? recordsToBatch(records) : undefined;
    const model = await openModel(positionals[0], { hookMap: values['hook-map'], threads: values.threads });
    try {
      const task = records ? null : values.task ? loadTaskConfig(values.task) : model.taskConfig;
      if (records) {
        if (text && maxTokenId(records) >= TextTokenizer.load(positionals[0]).vocabSize) throw new InputError(`the tokenizer of ${positionals[0]} does not fit its model`);
        model.checkFits(records);
      } else {
        if (!task) throw new ConfigError(`${positionals[0]} is not a tvlens checkpoint, so it has no task config: name one, or give your own prompts with --prompts-file`, '--task');
        if (values.task && model.config) checkTaskFits(task, model.config, model.file);
        checkShots(task, demos, model.config?.maxSeq ?? model.maxSeq, '--demos');
      }
      const count = given ? given.batch : prompts;
      const progress = new Progress('cache', count, !values.json);
      const summary = await model.cacheToArrow(out, {
        prompts: records ?? task!,
        hooks: values.hooks.split(',').map((s) => s.trim()),
        blocks,
        positions: values.positions,
        count,
        seed,
        demos,
        split,
        chunk,
        onProgress: (done) => progress.update(done),
      });
      if (values.json) console.log(JSON.stringify(summary));
      else console.log(`cached ${summary.hooks.length} hooks × ${summary.rows} rows from ${summary.prompts} prompts → ${path.relative(process.cwd(), out)} (${(summary.bytes / 2 ** 20).toFixed(1)} MiB)`);
    } finally {
      await model.close();
    }
  },
});

/** A model folder's text-task prompts (k-shot, `count` over all tasks) as prompt records. */
function folderPrompts(dir: string, values: Values<typeof CACHE_OPTIONS>, count: number): PromptRecord[] {
  const tok = TextTokenizer.load(readModelFolder(dir).tokenizer ?? path.join(dir, 'tokenizer.json'));
  const tasks = values.task!.split(',');
  const t = textPrompts(tok, { task: tasks, format: values.format, prompts: Math.ceil(count / tasks.length), seed: values.seed, shots: values.demos });
  return t.search.filter((r) => r.role === 'demo').slice(0, count);
}

/**
 * The hash to check a cache against for `model`. A checkpoint's is its manifest's weights hash; a
 * model without a manifest is hashed by its file, and also by its weights as a manifest would
 * hash them, so the very same weights opened without their manifest still match.
 */
async function modelHashFor(model: string, hookMap: string | undefined, cacheFile: string): Promise<string> {
  const opened = await openModel(model, { hookMap });
  const [kind, hash] = [opened.kind, opened.modelHash];
  await opened.close();
  if (kind === 'tvlens') return hash;
  const made = readCache(cacheFile, { hooks: [] }).meta.modelHash;
  // tvlens's weights hash covers its parameters: initializers named as parameters, not the graph's own constants.
  const params = [...readInitializers(readOnnxFile(model).bytes, model)].filter(([name]) => !name.includes('/') && !/^(const|scalar)_/.test(name));
  const weights = weightsHash(new Map(params));
  return made === weights ? weights : hash;
}

export const cacheInfoCommand = command({
  name: 'cache-info',
  summary: 'show what an activation cache holds; with --model, check it was made from that model',
  usage: 'tvlens cache-info <cache.arrow> [--model model.onnx [--hook-map map.json]]',
  options: {
    model: text('fail unless the cache was made from this model (its weights hash)'),
    'hook-map': text('the hook map of a foreign --model'),
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new InputError(`expected one cache file, got ${positionals.length}. Usage: ${cacheInfoCommand.usage}`);
    checkInputFile(positionals[0], 'an activation cache (.arrow)');
    if (values.model !== undefined) checkInputFile(values.model, 'an ONNX model');
    const expectModelHash = values.model ? await modelHashFor(values.model, values['hook-map'], positionals[0]) : undefined;
    const cache = readCache(positionals[0], { expectModelHash, hooks: [] });
    const m = cache.meta;
    if (values.json) {
      console.log(JSON.stringify({ rows: cache.rows, ...m }));
      return;
    }
    console.log(`${positionals[0]}: ${cache.rows} rows from ${m.prompts} prompts (seed ${m.seed}, ${m.demos} demos, ${m.split} tasks, positions ${JSON.stringify(m.positions)})`);
    console.log(`model ${m.modelFile} (${m.modelKind}), hash ${m.modelHash.slice(0, 12)}…${expectModelHash ? ' — matches --model' : ''}; tvlens ${m.tvlensVersion}`);
    for (const h of m.hooks) console.log(`  ${h.name.padEnd(30)} [${h.shape.join(', ')}] (${h.axes.join(', ')})`);
  },
});
