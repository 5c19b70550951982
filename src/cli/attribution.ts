/**
 * `tvlens patch --method attribution`: every cell of every site estimated from one forward pass
 * and one forward-plus-backward pass, then (unless --skip-exact) checked against exact patching
 * of the same cells, with Pearson r, the top-k overlap, and warnings where the estimate is weak.
 */
import path from 'node:path';
import { ATTRIBUTION_SITES, type AttributionGrid, type AttributionResult, type AttributionSite } from '../analysis/attribution.js';
import { type PromptPair } from '../analysis/patching.js';
import type { TaskConfig } from '../tasks/index.js';
import { oneOf } from '../util/config.js';
import type { PatchValues } from './patch.js';
import { VERSION } from '../version.js';
import { Progress } from './progress.js';
import { type OpenedModel, fmt, writeOut } from './open.js';

/** One grid as text, positions down and rows (blocks, heads) across: the estimate, and exact beside it when run. */
export function attributionTable(g: AttributionGrid): string {
  const short = (label: string) => label.replace(/^blocks\.(\d+)\.(attn\.)?hook_/, 'L$1 ').replace(/\[head (\d+)\]$/, '.h$1');
  const cols = g.rows.map(short);
  const width = Math.max(...g.columns.map((c) => c.length));
  const cellWidth = Math.max(6, ...cols.map((c) => c.length));
  const line = (label: string, cells: string[]) => `${label.padEnd(width)}  ${cells.map((c) => c.padStart(cellWidth)).join(' ')}`;
  const head = `${g.site} (${g.hook}): ${g.pearson === null ? 'no exact comparison' : `Pearson r ${fmt(g.pearson)} with exact patching, top-k overlap ${fmt(g.topKOverlap)}`}`;
  const block = (title: string, grid: number[][]) => [title, line('', cols), ...g.columns.map((c, j) => line(c, grid.map((row) => fmt(row[j]))))];
  return [head, ...block('  attribution estimate (normalised)', g.estimate), ...(g.exact ? block('  exact patching (normalised)', g.exact) : [])].join('\n');
}

export function attributionSummary(r: AttributionResult): string {
  const lines = [
    `attribution patching, ${r.direction}; corruption: ${r.corruption}; ${r.cells} cells estimated in ${(r.ms.attribution / 1000).toFixed(2)} s (after ${(r.ms.sessions / 1000).toFixed(1)} s building its two sessions)${r.ms.exact === null ? '' : `, exact patching of the same cells ${(r.ms.exact / 1000).toFixed(1)} s (${(r.ms.exact / r.ms.attribution).toFixed(0)}× longer)`}`,
    `metric (logit difference, or −MSE): clean ${fmt(r.clean)}, corrupted ${fmt(r.corrupted)}; scores normalised as (patched − corrupted) / (clean − corrupted)`,
    ...r.grids.map((g) => `  ${g.site.padEnd(10)} r = ${fmt(g.pearson)}, top-${r.options.topK} overlap ${fmt(g.topKOverlap)}`),
  ];
  if (r.warnings.length) lines.push('warnings:', ...r.warnings.map((w) => `  ! ${w}`));
  return lines.join('\n');
}

/** `pairs`: prompt pairs from --prompts-file; else they are drawn from the task config. */
export async function runAttribution(values: PatchValues, opened: Omit<OpenedModel, 'task'> & { task: TaskConfig | null }, pairs?: PromptPair): Promise<void> {
  const { handle, task, file, model, note } = opened;
  const sites = values.site === undefined || values.site === 'all' ? [...ATTRIBUTION_SITES] : values.site.split(',').map((s) => oneOf(s, ATTRIBUTION_SITES, '--site') as AttributionSite);
  let bar: Progress | null = null;
  const result = await handle.attributionPatch(pairs ?? task!, {
    sites,
    direction: values.direction,
    corruption: values.corruption,
    split: values.split,
    maxTasks: values.tasks,
    prompts: values.prompts,
    shots: values.shots,
    seed: values.seed,
    exact: !values['skip-exact'],
    topK: values['top-k'],
    onProgress: (done, total) => (bar ??= new Progress('attribution, then exact patching', total, !values.json)).update(done),
  });
  const full = { ...result, tvlensVersion: VERSION, model, task };
  writeOut(values, full);
  if (values.json) console.log(JSON.stringify(full));
  else console.log(`patch --method attribution ${path.relative(process.cwd(), file)} (${note})\n${attributionSummary(result)}\n\n${result.grids.map(attributionTable).join('\n\n')}`);
}
