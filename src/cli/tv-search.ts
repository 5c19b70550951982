/**
 * `tvlens tv-search <checkpoint.onnx>`: task-vector prompting at every layer, per task and
 * averaged, with the zero-shot baseline, k-shot ICL and the best layer (dev → test). Prompts come
 * from the task config (--task, or a checkpoint's own) or from your own prompts file
 * (--prompts-file); --save-prompts writes the task's prompts as such a file.
 */
import path from 'node:path';
import { analysisTasks } from '../analysis/batches.js';
import { searchPromptRecords, searchPromptsFor } from '../analysis/search-prompts.js';
import { type TvSearchOptions, type TvSearchResult } from '../analysis/tv-search.js';
import { InputError } from '../errors.js';
import type { TaskConfig } from '../tasks/index.js';
import { formatPrompts } from '../tasks/prompt-file.js';
import { VERSION } from '../version.js';
import { command, custom, intList, text } from './command.js';
import { writeTextOnce } from './limits.js';
import { PROMPTS_FILE_OPTION, SEARCH_OPTIONS, fmt, openForPrompts, parseSets, searchOptions, stageProgress, writeOut } from './open.js';

/** Writes the prompts a search draws from `task` with `options` as a prompts file (rewriting only an identical one). */
function savePrompts(file: string, task: TaskConfig | null, options: TvSearchOptions): void {
  if (!task) throw new InputError('--save-prompts writes the prompts drawn from a task config; these come from --prompts-file already');
  const tasks = analysisTasks(task, options.split ?? 'train', options.maxTasks, options.seed ?? 0);
  const text = formatPrompts(searchPromptRecords(searchPromptsFor(task, tasks, options)));
  writeTextOnce(file, '--save-prompts', text);
}

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

export const tvSearchCommand = command({
  name: 'tv-search',
  summary: 'find the layer whose task vector makes zero-shot prompts solve the task (task-vector prompting)',
  usage: 'tvlens tv-search <checkpoint.onnx | model.onnx --hook-map map.json --task preset | --prompts-file p.jsonl> [--layers 0-4] [--mode replace|add] [--sets 2+3] [--prompts 16] [--queries 64] [--json]',
  options: {
    ...SEARCH_OPTIONS,
    ...PROMPTS_FILE_OPTION,
    'save-prompts': text('also write the prompts drawn from the task config as a prompts file (JSONL); --prompts-file on it gives the same numbers'),
    sets: custom('layer sets injected together, e.g. 2+3,1+2+3', parseSets),
    combine: intList("inject each task's best k layers (on dev) together, for each k listed, e.g. 2,3", { min: 1 }),
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new InputError(`expected one model, got ${positionals.length}. Usage: ${tvSearchCommand.usage}`);
    const { handle, task, prompts, file, model, note } = await openForPrompts(positionals[0], values);
    try {
      const options: TvSearchOptions = {
        ...searchOptions(values),
        sets: values.sets,
        combine: values.combine,
        onProgress: stageProgress('tv-search', !values.json),
      };
      if (values['save-prompts'] !== undefined) savePrompts(values['save-prompts'], task, options);
      const result = await handle.tvSearch(prompts ?? task!, options);
      const full = { ...result, tvlensVersion: VERSION, model, task };
      writeOut(values, full);
      if (values.json) console.log(JSON.stringify(full));
      else console.log(`tv-search ${path.relative(process.cwd(), file)} (${note})\n${searchTable(result)}`);
    } finally {
      await handle.close();
    }
  },
});
