/**
 * Models side by side (baseline against TVP, pairwise against triplet, depths): their task-vector
 * curves on one chart, and a table and bar chart of the headline numbers. Drawn only when the
 * models share a task set; the caller says so otherwise.
 */
import type { TvSearchResult } from '../../analysis/tv-search.js';
import { type Section, esc, figure, table } from '../html.js';
import { type ModelInput, tvpOf } from '../inputs.js';
import { type Series, bars, lineChart, num } from '../svg.js';
import { strengthOf } from './task-vectors.js';
import { metricTitle, modelColor } from './training.js';

export interface Compared {
  readonly m: ModelInput;
  readonly i: number;
  readonly r: TvSearchResult;
}

export function compareSection(models: readonly Compared[], extraColumns: readonly { head: string; cell: (c: Compared) => string }[] = []): Section | null {
  if (models.length < 2) return null;
  const metrics = new Set(models.map((c) => c.r.metric));
  if (metrics.size > 1) return null;
  const metric = models[0].r.metric;
  const curves: Series[] = models.map(({ m, i, r }) => ({
    label: m.label,
    color: modelColor(i),
    dots: true,
    points: r.average.curve.map((c) => [c.layers[0], c.all.mean] as const),
    band: r.average.curve.map((c) => [c.layers[0], c.all.low, c.all.high] as const),
  }));
  const overlay = figure(
    lineChart({ label: 'task-vector curves of every model', xTitle: 'layer ℓ the task vector is injected at (0 = embeddings)', yTitle: `with the task vector: ${metricTitle(metric)}`, series: curves, integerX: true, yDomain: metric === 'accuracy' ? [0, 1] : undefined, width: 520 }),
    'The mean task-vector curve of each model with its 95% band over tasks. A tall narrow peak is a local task vector; a flat or low curve means the task is weakly or non-locally encoded.',
  );
  const cats = ['zero-shot', 'task vector at best ℓ', 'ICL'];
  const barFig = figure(
    bars({
      label: 'zero-shot, task vector and ICL per model',
      categories: cats,
      series: models.map(({ m, i, r }) => ({
        label: m.label,
        color: modelColor(i),
        values: [r.average.baseline.all.mean, r.average.best.test, r.average.icl.mean],
        intervals: [[r.average.baseline.all.low, r.average.baseline.all.high], null, [r.average.icl.low, r.average.icl.high]],
      })),
      yTitle: metricTitle(metric),
      yDomain: metric === 'accuracy' ? [0, 1] : undefined,
    }),
    'Per model: the zero-shot score, the score with the task vector injected at the best layer (test half of the queries) and the ICL score. Whiskers: 95% intervals over tasks.',
  );
  const rows = models.map((c) => {
    const { m, r } = c;
    const cfg = m.checkpoint?.manifest.model;
    const tvp = tvpOf(m);
    return [
      esc(m.label),
      esc(m.task?.format ?? '?'),
      cfg ? String(cfg.layers) : '?',
      tvp ? `TVP-loss at ℓ=${tvp.layer}, λ=${num(tvp.lambda)}` : 'ICL loss only',
      num(r.average.icl.mean),
      num(r.average.baseline.all.mean),
      String(r.average.best.layer),
      num(r.average.best.test),
      num(strengthOf(r)),
      ...extraColumns.map((x) => x.cell(c)),
    ];
  });
  const head = ['model', 'format', 'blocks', 'training', 'ICL', 'zero-shot', 'best ℓ (dev)', 'task vector at best ℓ (test)', 'strength', ...extraColumns.map((x) => x.head)];
  return {
    id: 'compare',
    title: 'Models compared',
    html: `<p class="lead">The same task set, different models: where and how strongly does each encode the task?</p>${table(head, rows)}<div class="figs">${overlay}${barFig}</div>`,
  };
}
