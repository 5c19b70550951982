/**
 * `tvlens patch <checkpoint.onnx>`: activation patching on clean/corrupted ICL prompt pairs over
 * a layer × position grid (resid_pre, resid_post), per head (z), or per head and position (z_pos).
 * A foreign model (--hook-map, --task) is patched at resid sites only. Pairs come from the task
 * config, or from your own prompts file (--prompts-file: `tokens`, `corrupted`, `answer`).
 */
import path from 'node:path';
import { analysisTasks } from '../analysis/batches.js';
import { CORRUPTIONS, DIRECTIONS, PATCH_SITES, type PatchResult, type Scores, pairRecords, promptPairs, promptPairsFrom } from '../analysis/patching.js';
import { ConfigError, InputError } from '../errors.js';
import { formatPrompts } from '../tasks/prompt-file.js';
import { oneOf } from '../util/config.js';
import { VERSION } from '../version.js';
import { type CommandValues, choice, command, flag, given, indexList, int, text } from './command.js';
import { writeTextOnce } from './limits.js';
import { MODEL_OPTIONS, PROMPTS_FILE_OPTION, fmt, openForPrompts, writeOut } from './open.js';
import { Progress } from './progress.js';
import { runAttribution } from './attribution.js';
import type { ForeignAttributionResult } from '../analysis/foreign-attribution.js';
import { ATTRIBUTION_SITES } from '../analysis/attribution.js';

const SHOWN = ['normalized', 'logitDiff', 'accuracy', 'pCorrect'] as const;

/** The grid of one score, long axis down: positions (or heads) as rows, blocks as columns. */
export function patchTable(r: PatchResult, metric: (typeof SHOWN)[number]): string {
  const grid = r[metric];
  const transpose = r.columns.length > r.rows.length;
  const [down, across] = transpose ? [r.columns, r.rows] : [r.rows, r.columns];
  const cell = (i: number, j: number) => fmt(transpose ? grid[j][i] : grid[i][j]);
  const short = (label: string) => label.replace(/^blocks\.(\d+)\.(attn\.)?hook_/, 'L$1 ');
  const width = Math.max(...down.map((d) => d.length));
  const cols = across.map(short);
  const line = (label: string, cells: string[]) => `${label.padEnd(width)}  ${cells.map((c, j) => c.padStart(Math.max(6, cols[j].length))).join(' ')}`;
  const scores = (s: Scores) => `logit diff ${fmt(s.logitDiff)}${s.accuracy === null ? '' : `, accuracy ${fmt(s.accuracy)}, P(correct) ${fmt(s.pCorrect)}`}`;
  return [
    `${r.directionNote}`,
    `corruption: ${r.corruption}; site ${r.hook}; ${r.cells} cells in ${(r.ms / 1000).toFixed(1)} s`,
    `clean: ${scores(r.clean)}; corrupted: ${scores(r.corrupted)}`,
    `showing: ${metric}${metric === 'normalized' ? ' = (patched − corrupted) / (clean − corrupted) of the logit difference' : ''}`,
    '',
    line('', cols),
    ...down.map((d, i) => line(d, across.map((_, j) => cell(i, j)))),
  ].join('\n');
}

const PATCH_OPTIONS = {
  ...MODEL_OPTIONS,
  ...PROMPTS_FILE_OPTION,
  'save-prompts': text('also write the prompt pairs drawn from the task config as a prompts file (JSONL); --prompts-file on it gives the same numbers'),
  // Its values depend on --method (one site, or a list): checked where the method is known.
  site: text(`where to patch: ${PATCH_SITES.join(', ')} (z: per head over all positions; z_pos: per head and position; default resid_pre). With --method attribution: a list of ${ATTRIBUTION_SITES.join(', ')} (default: all)`),
  method: choice("'exact' (one suffix pass per cell) or 'attribution' (every cell from one forward and one forward-plus-backward pass, checked against exact)", ['exact', 'attribution'] as const, 'exact'),
  'skip-exact': flag('with --method attribution: skip the exact patching that validates the estimate'),
  'top-k': int('with --method attribution: k of the top-k overlap with exact patching', { min: 1 }, 10),
  direction: choice(`${DIRECTIONS.join(', ')}: clean into corrupted, corrupted into clean, or the mean over prompts into clean`, DIRECTIONS, 'denoising'),
  corruption: choice(`${CORRUPTIONS.join(', ')}: demos labelled by the next task of the list, or their labels shuffled`, CORRUPTIONS, 'other-task'),
  prompts: int('prompt pairs per task', { min: 1 }, 16),
  tasks: int('at most this many tasks (the first of the split)', { min: 1 }, 8),
  blocks: indexList('blocks to patch (block indices), e.g. 0-3 (default: all)'),
  positions: indexList('positions to patch, e.g. 0-5,33 (default: all)'),
  show: choice(`the score the table shows: ${SHOWN.join(', ')}`, SHOWN, 'normalized'),
} as const;

export type PatchValues = CommandValues<typeof PATCH_OPTIONS>;

export const patchCommand = command({
  name: 'patch',
  summary: 'activation patching between clean and corrupted ICL prompts, over layers × positions or heads',
  usage: 'tvlens patch <checkpoint.onnx | model.onnx --hook-map map.json --task preset | --prompts-file pairs.jsonl> [--site resid_pre|resid_post|z|z_pos] [--direction denoising|noising|mean] [--corruption other-task|shuffled-labels] [--method exact|attribution] [--json]',
  options: PATCH_OPTIONS,
  async run(values, positionals) {
    if (positionals.length !== 1) throw new InputError(`expected one model, got ${positionals.length}. Usage: ${patchCommand.usage}`);
    const { show, method } = values;
    // Each method's own flags are refused with the other, never ignored.
    const others = method === 'attribution' ? ['blocks', 'positions', 'save-prompts', 'show'] : ['skip-exact', 'top-k'];
    for (const f of others) {
      if (given(values, f)) throw new ConfigError(method === 'attribution' ? 'applies to --method exact: attribution patching estimates every cell of each --site' : 'applies to --method attribution', `--${f}`);
    }
    const opened = await openForPrompts(positionals[0], values);
    const { handle, task, file, model, note } = opened;
    const prompts = opened.pairs ?? opened.prompts;
    try {
      if (method === 'attribution' && opened.pairs) {
        const r = (await opened.handle.attributionPatch(opened.pairs)) as unknown as ForeignAttributionResult;
        writeOut(values, { ...r, model });
        if (values.json) return void console.log(JSON.stringify(r));
        const row = (g: readonly (readonly number[])[], l: number) => g[l].map((x) => x.toFixed(2).padStart(6)).join(' ');
        console.log([`attribution ${path.relative(process.cwd(), file)} (${note}): residual stream, layer × position; metric clean ${r.clean.toFixed(3)}, corrupted ${r.corrupted.toFixed(3)}; correlation with exact patching ${r.correlation.toFixed(2)}`, ...r.attribution.flatMap((_, l) => [`ℓ=${l} attribution ${row(r.attribution, l)}`, `ℓ=${l} exact       ${row(r.exact, l)}`])].join('\n'));
        return;
      }
      if (method === 'attribution') return await runAttribution(values, opened, prompts ? promptPairsFrom(prompts) : undefined);
      let bar: Progress | null = null;
      const { seed, corruption } = values;
      if (values['save-prompts'] !== undefined) {
        if (!task) throw new ConfigError('writes the pairs drawn from a task config; these come from --prompts-file already', '--save-prompts');
        const tasks = analysisTasks(task, values.split, values.tasks, seed);
        const text = formatPrompts(pairRecords(promptPairs(task, tasks, { count: values.prompts, shots: values.shots, corruption, seed })));
        writeTextOnce(values['save-prompts'], '--save-prompts', text);
      }
      const result = await handle.patch(prompts ?? task!, {
        site: oneOf(values.site ?? 'resid_pre', PATCH_SITES, '--site'),
        direction: values.direction,
        corruption,
        split: values.split,
        maxTasks: values.tasks,
        prompts: values.prompts,
        shots: values.shots,
        layers: values.blocks,
        positions: values.positions,
        seed,
        onProgress: (done, total) => (bar ??= new Progress('patch', total, !values.json)).update(done),
      });
      const full = { ...result, tvlensVersion: VERSION, model, task };
      writeOut(values, full);
      if (values.json) console.log(JSON.stringify(full));
      else console.log(`patch ${path.relative(process.cwd(), file)} (${note})\n${patchTable(result, show)}`);
    } finally {
      await handle.close();
    }
  },
});
