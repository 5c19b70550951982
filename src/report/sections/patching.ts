/** Activation-patching heatmaps (layer × position), from `patch` output, prompt tokens on the axis. */
import type { PatchResult } from '../../analysis/patching.js';
import { type Section, esc, figure, html } from '../html.js';
import { heatmap, num } from '../svg.js';

/** "12:→q(→)" → the token and its role, for a two-line axis label. */
export function splitColumn(label: string): { token: string; role: string } {
  const m = /^(\d+):([^()]+)\((.*)\)$/.exec(label);
  if (m) return { token: m[3], role: m[2] };
  // Vector prompts have no tokens: the role goes on top, the position under it.
  const v = /^(\d+):([^()]+)$/.exec(label);
  return v ? { token: v[2], role: v[1] } : { token: label, role: '' };
}

/**
 * Rows in the task-vector convention where they are residuals ("blocks.1.hook_resid_pre" is the
 * stream entering block 1: ℓ=1; resid_post of block 1 is ℓ=2), so this figure and the task-vector
 * curve share their layer numbers. Long hook names would crowd the axis; the caption names the hook.
 */
export function rowLabel(r: string): string {
  const m = /^blocks\.(\d+)\.(?:attn\.)?hook_(\w+)(.*)$/.exec(r);
  if (!m) return r;
  const b = Number(m[1]);
  if (m[2] === 'resid_pre') return `ℓ=${b}`;
  if (m[2] === 'resid_post') return `ℓ=${b + 1}`;
  return `block ${b} ${m[2]}${m[3].replace(/\[head (\d+)\]/, ' head $1')}`;
}

export function patchFigure(label: string, r: PatchResult, command: string): string {
  const cols = r.columns.map(splitColumn);
  const tokens = r.clean.accuracy !== null;
  const svg = heatmap({
    label: `activation patching, ${label}`,
    rows: r.rows.map(rowLabel),
    cols: cols.map((c) => c.token),
    subCols: cols.map((c) => c.role),
    values: r.normalized,
    xTitle: tokens ? 'position in the prompt (token above, its role below; q = the query)' : 'position in the prompt (its role above, its index below; q = the query)',
    yTitle: r.site.startsWith('resid') ? 'layer ℓ' : 'block',
    valueTitle: 'normalised effect (1 = clean answer restored, 0 = no effect)',
  });
  const acc = r.clean.accuracy !== null ? ` Accuracy: clean ${num(r.clean.accuracy)}, corrupted ${num(r.corrupted.accuracy ?? NaN)}.` : '';
  const caption = html`${label}: ${r.directionNote}. Corruption: ${r.corruption === 'other-task' ? 'the demos carry another task’s labels' : 'the demos’ labels are shuffled'}. \
Each cell patches <code>${r.hook}</code> at one block and one position, averaged over ${r.options.prompts} prompt pairs per task; \
effect = (patched − corrupted) / (clean − corrupted) of ${tokens ? 'the logit difference between the clean and the corrupted answer' : '−MSE against the clean target'} (clean ${num(r.clean.logitDiff)}, corrupted ${num(r.corrupted.logitDiff)}).${acc} \
${tokens ? 'The axis shows the first prompt’s tokens; every prompt has the same layout.' : ''}`;
  return figure(svg, caption, command);
}

export function patchSection(models: readonly { label: string; r: PatchResult; command: string }[]): Section | null {
  if (models.length === 0) return null;
  const figs = models.map(({ label, r, command }) => patchFigure(label, r, command));
  return {
    id: 'patching',
    title: 'Activation patching: layer × position',
    html: `<p class="lead">Which positions and layers carry what the model needs to answer the query? Dark blue cells restore the clean answer when patched; white cells do nothing.</p><div class="figs">${figs.join('')}</div>`,
  };
}
