/** Training curves (loss; ICL score against step) and ICL score against the number of shots. */
import type { ShotCurve } from '../../tasks/score.js';
import { type Section, figure } from '../html.js';
import type { ModelInput } from '../inputs.js';
import { PALETTE, type Series, lineChart } from '../svg.js';

export const modelColor = (i: number): string => PALETTE[i % PALETTE.length];

export const metricTitle = (metric: string): string => (metric === 'nmse' ? 'nMSE (lower is better)' : 'accuracy');

/**
 * Training: loss and ICL score against step (from metrics.jsonl), and ICL score against shots (from
 * the last metrics line, or a bare checkpoint's manifest), side by side.
 */
export function trainingSection(models: readonly ModelInput[], trainCommand: (m: ModelInput) => string): Section | null {
  const figs = [...curveFigures(models, trainCommand), ...shotsFigures(models)];
  if (figs.length === 0) return null;
  return {
    id: 'training',
    title: 'Training and in-context learning',
    html: `<p class="lead">How each run learned: its loss and its in-context-learning score as training went on, and how its score grows with the number of demos in the prompt.</p><div class="figs">${figs.join('')}</div>`,
  };
}

function curveFigures(models: readonly ModelInput[], trainCommand: (m: ModelInput) => string): string[] {
  const withMetrics = models.map((m, i) => ({ m, i })).filter(({ m }) => m.metrics.length > 0);
  if (withMetrics.length === 0) return [];
  const loss: Series[] = withMetrics.map(({ m, i }) => ({ label: m.label, color: modelColor(i), points: m.metrics.map((l) => [l.step, l.trainLoss] as const), dots: m.metrics.length < 12 }));
  const figs = [
    figure(
      lineChart({ label: 'training loss against step', xTitle: 'training step', yTitle: lossTitle(withMetrics.map(({ m }) => m)), series: loss }),
      'Mean training loss (cross-entropy for token tasks, MSE for regression) over the steps since the previous evaluation. Lower is better.',
      withMetrics.map(({ m }) => trainCommand(m)).join('; '),
    ),
  ];
  for (const metric of metricsOf(withMetrics.map(({ m }) => m))) {
    const series: Series[] = [];
    for (const { m, i } of withMetrics) {
      const lines = m.metrics.filter((l) => l.eval.train.metric === metric);
      if (lines.length === 0) continue;
      const k = lines[0].eval.train.byShots.length - 1;
      series.push({ label: `${m.label}: train tasks, ${k} shots`, color: modelColor(i), points: lines.map((l) => [l.step, at(l.eval.train, k)] as const), dots: lines.length < 12 });
      if (lines.some((l) => l.eval.heldout)) {
        series.push({ label: `${m.label}: held-out tasks`, color: modelColor(i), dashed: true, points: lines.filter((l) => l.eval.heldout).map((l) => [l.step, at(l.eval.heldout!, k)] as const), dots: lines.length < 12 });
      }
      series.push({ label: `${m.label}: zero-shot`, color: modelColor(i), thin: true, points: lines.map((l) => [l.step, at(l.eval.train, 0)] as const) });
    }
    const zeroShot = { label: 'zero-shot (thin)', color: '#8a939e' };
    figs.push(
      figure(
        lineChart({ label: `ICL ${metric} against step`, xTitle: 'training step', yTitle: `ICL ${metricTitle(metric)}`, series, yDomain: metric === 'accuracy' ? [0, 1] : undefined, legendExtra: [zeroShot] }),
        `ICL ${metricTitle(metric)} at the query after the most demos the model was trained with, on fresh prompts from a fixed evaluation stream. Solid: train tasks; dashed: held-out tasks never seen in training; thin line: the same prompts with zero demos (chance-level context).`,
      ),
    );
  }
  return figs;
}

function shotsFigures(models: readonly ModelInput[]): string[] {
  const curves = models.flatMap((m, i) => {
    const last = m.metrics.at(-1);
    const ev = (last?.eval ?? (m.checkpoint?.manifest.metrics.eval as { train?: ShotCurve; heldout?: ShotCurve } | undefined)) ?? null;
    if (!ev?.train?.byShots) return [];
    const step = last?.step ?? m.checkpoint?.manifest.step ?? 0;
    return [{ m, i, ev: ev as { train: ShotCurve; heldout?: ShotCurve }, step }];
  });
  if (curves.length === 0) return [];
  return metricsOf(curves.map((c) => c.m)).map((metric) => {
    const series: Series[] = curves
      .filter((c) => c.ev.train.metric === metric)
      .flatMap(({ m, i, ev, step }) => [
        { label: `${m.label} (step ${step}): train tasks`, color: modelColor(i), dots: true, points: ev.train.byShots.map((v, k) => [k, v] as const) },
        ...(ev.heldout ? [{ label: `${m.label}: held-out tasks`, color: modelColor(i), dashed: true, dots: true, points: ev.heldout.byShots.map((v, k) => [k, v] as const) }] : []),
      ]);
    return figure(
      lineChart({ label: `ICL ${metric} against shots`, xTitle: 'demos in the prompt before the query (shots)', yTitle: `ICL ${metricTitle(metric)}`, series, integerX: true, yDomain: metric === 'accuracy' ? [0, 1] : undefined }),
      `The score at each arrow of the evaluation prompts, grouped by how many demos came before it, at the last evaluation. A model that learns in context rises from its zero-shot score as demos accumulate. Solid: train tasks; dashed: held-out tasks.`,
    );
  });
}

function metricsOf(models: readonly ModelInput[]): string[] {
  const found = new Set<string>();
  for (const m of models) for (const l of m.metrics) found.add(l.eval.train.metric);
  for (const m of models) {
    const ev = m.checkpoint?.manifest.metrics.eval as { train?: ShotCurve } | undefined;
    if (ev?.train?.metric) found.add(ev.train.metric);
  }
  return [...found].sort();
}

const at = (c: ShotCurve, k: number): number => c.byShots[Math.min(k, c.byShots.length - 1)] ?? NaN;

/** Cross-entropy for token models, MSE for regression, or both named when a report mixes them. */
function lossTitle(models: readonly ModelInput[]): string {
  const kinds = new Set(models.map((m) => (m.checkpoint?.manifest.model.output ?? (m.config?.model as { output?: string } | undefined)?.output) === 'vector' ? 'MSE' : 'cross-entropy, nats'));
  return `training loss (${[...kinds].sort().join(' or ')})`;
}
