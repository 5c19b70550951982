/**
 * Task-vector score against layer, per task and averaged, from tv-search output.
 */
import type { LocalityResult } from '../../analysis/locality.js';
import type { TvSearchResult } from '../../analysis/tv-search.js';
import { type Section, esc, figure, html, table } from '../html.js';
import { type ModelInput, tvpOf } from '../inputs.js';
import { PALETTE, type Series, lineChart, num } from '../svg.js';
import { separabilityFigure } from './locality.js';
import { pcaFigures } from './pca.js';
import { metricTitle, modelColor } from './training.js';

const BASELINE = '#6b7280';
const ICL = '#009E73';

export const layerName = (l: number): string => (l === 0 ? 'ℓ=0 (embeddings)' : `ℓ=${l}`);

/** One model's curve: the mean over tasks with its 95% band, each task thin, baseline, ICL, best layer. */
export function tvFigure(label: string, r: TvSearchResult, color: string, command: string, tvpLayer: number | null = null, format: 'triplet' | 'pairwise' = 'triplet'): string {
  const a = r.average;
  const L = Math.max(...a.curve.map((c) => c.layers[0]));
  const families = [...new Set(r.tasks.map((t) => t.task.family))].sort();
  const famColor = (f: string) => PALETTE[(families.indexOf(f) + 3) % PALETTE.length];
  const series: Series[] = [
    ...r.tasks.map((t) => ({ label: `${t.task.name}: best ${layerName(t.best.layer)}`, color: famColor(t.task.family), thin: true, points: t.curve.map((c) => [c.layers[0], c.all.mean] as const) })),
    { label: `mean over ${r.tasks.length} tasks (95% CI)`, color, dots: true, points: a.curve.map((c) => [c.layers[0], c.all.mean] as const), band: a.curve.map((c) => [c.layers[0], c.all.low, c.all.high] as const) },
  ];
  const acc = r.metric === 'accuracy';
  const best = a.best.layer;
  const svg = lineChart({
    label: `task-vector ${r.metric} against layer, ${label}`,
    xTitle: 'layer ℓ the task vector is injected at (0 = embeddings)',
    yTitle: `with the task vector: ${metricTitle(r.metric)}`,
    series,
    hlines: [
      { value: a.icl.mean, label: `${r.options.shots}-shot ICL`, color: ICL },
      { value: a.baseline.all.mean, label: 'zero-shot baseline', color: BASELINE },
    ],
    vlines: [
      ...(best >= 0 ? [{ value: best, label: `best ℓ=${best}`, color: '#b3261e' }] : []),
      ...(tvpLayer !== null ? [{ value: tvpLayer, label: `TVP-loss ℓ=${tvpLayer}`, color: '#6a3d9a' }] : []),
    ],
    legendExtra: families.map((f) => ({ label: `one task (${f})`, color: famColor(f) })),
    integerX: true,
    yDomain: acc ? [0, 1] : undefined,
    width: Math.max(460, 120 + L * 60),
  });
  const caption = html`${label}: a task vector θ_ℓ (the mean residual at the ${format === 'triplet' ? 'last arrow' : 'query’s x'} of ${r.options.prompts} prompts with ${r.options.shots} demos) \
${r.options.mode === 'replace' ? 'replaces' : 'is added to'} the ${format === 'triplet' ? 'arrow' : 'last'} state of zero-shot prompts <code>${format === 'triplet' ? 'x_q →' : 'x_q'}</code> at layer ℓ. \
Best layer ${best} is chosen on the dev half of the queries; its score on the test half is ${num(a.best.test)} \
(ICL ${num(a.icl.mean)}, zero-shot ${num(a.baseline.all.mean)}). ${acc ? 'Higher is better.' : 'nMSE = MSE ÷ mean y² of the queries (1 = always answering 0); lower is better.'}`;
  return figure(svg, caption, command);
}

export function tvTable(r: TvSearchResult): string {
  const rows = r.tasks.map((t) => [
    t.task.name,
    t.task.family,
    html`<span class="num">${t.best.layer}</span>`,
    num(t.best.test),
    num(Math.max(...t.curve.map((c) => c.all.mean))),
    num(t.baseline.all.mean),
    num(t.icl.mean),
  ]);
  return `<details><summary>per-task scores (${r.tasks.length} tasks)</summary>${table(['task', 'family', 'best ℓ (dev)', 'task vector at best ℓ (test)', 'peak over ℓ (all queries)', 'zero-shot', 'ICL'], rows)}</details>`;
}

export interface TvRow {
  readonly m: ModelInput;
  readonly i: number;
  readonly r: TvSearchResult;
  readonly command: string;
  /** The model's locality, for its separability and PCA beside the curve. */
  readonly loc: { readonly r: LocalityResult; readonly command: string; readonly pcaLayer: number } | null;
}

/**
 * One row per model: where the task vector works (the curve), whether tasks are told apart at
 * each layer (separability), and what the task vectors look like (PCA at a chosen layer).
 */
export function tvSection(rows: readonly TvRow[]): Section | null {
  if (rows.length === 0) return null;
  const html = rows.map((row, n) => {
    const { m, i, r, command, loc } = row;
    const figs = [`<div>${tvFigure(m.label, r, modelColor(i), command, tvpOf(m)?.layer ?? null, m.task?.format)}${tvTable(r)}</div>`];
    if (loc?.r.separability.length) figs.push(separabilityFigure([{ m, i, r: loc.r }]));
    if (loc?.r.pca?.length) figs.push(pcaFigures({ label: m.label, tasks: loc.r.search.tasks.map((t) => t.task.name), layers: loc.r.pca, initial: loc.pcaLayer, command: loc.command }, n));
    return `${rows.length > 1 ? `<h3>${esc(m.label)}</h3>` : ''}<div class="figs">${figs.join('')}</div>`;
  });
  const conv = esc(rows[0].r.convention ?? '');
  return {
    id: 'task-vectors',
    title: 'Task vectors across layers',
    html: `<p class="lead">Where does the model encode which task it is doing? The curve injects the task vector at one layer of a zero-shot prompt: a peak means the task is recoverable from that layer alone. Beside it: how far apart the tasks’ residuals are at each layer, and a PCA of them at the layer you pick. Layer convention: ${conv}.</p>${html.join('')}`,
  };
}

/**
 * One sentence on what the search found, for the overview. "Beats the baseline" needs the best
 * layer's test score to clear the zero-shot score by more than the baseline's own 95% half-width.
 * `recovered` is locality's (peak − zero-shot) ÷ (ICL − zero-shot), where there is one.
 */
export function verdict(r: TvSearchResult, recovered?: number): string {
  const a = r.average;
  const acc = r.metric === 'accuracy';
  const gain = acc ? a.best.test - a.baseline.all.mean : a.baseline.all.mean - a.best.test;
  const noise = Math.max(0.02, (a.baseline.all.high - a.baseline.all.low) / 2);
  if (!(gain > noise)) return `No layer's task vector beats the zero-shot baseline: the task is not recoverable from one residual at the query (ICL ${num(a.icl.mean)}, zero-shot ${num(a.baseline.all.mean)}).`;
  const share = recovered !== undefined && Number.isFinite(recovered) ? `recovers ${Math.round(100 * recovered)}% of ICL's gain over zero-shot` : 'beats the zero-shot baseline';
  return `A task vector at ℓ=${a.best.layer} ${share}: ${r.metric} ${num(a.best.test)} against ${num(a.icl.mean)} with all demos and ${num(a.baseline.all.mean)} zero-shot.`;
}
