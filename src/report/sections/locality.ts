/**
 * Locality and strength of task vectors (from `locality` output): a table for every model, and for
 * several models on one task set, their curves overlaid and their metrics side by side (baseline
 * against TVP, pairwise against triplet, depths); separability per layer; emergence over a run's
 * checkpoints. The metrics are the analysis layer's; this file only draws them.
 */
import type { LocalityMetrics, LocalityResult } from '../../analysis/locality.js';
import { type Section, esc, figure, table } from '../html.js';
import { type ModelInput, tvpOf } from '../inputs.js';
import { type Series, bars, lineChart, num } from '../svg.js';
import { metricTitle, modelColor } from './training.js';

export interface Located {
  readonly m: ModelInput;
  readonly i: number;
  readonly r: LocalityResult;
  readonly command: string;
}

const gainAt = (m: LocalityMetrics, k: number) => m.nonLocality.find((n) => n.k === k)?.gain ?? NaN;
const fmt = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : num(v));

const DEFINITIONS =
  'strength = peak ÷ ICL; recovered = (peak − zero-shot) ÷ (ICL − zero-shot); entropy of the gain over zero-shot across layers (0 = one layer carries it all, 1 = spread evenly); FWHM = layers around the peak with at least half its gain; +k ℓ = the best k layers injected together minus the best one (non-locality); separability Δ = mean cosine of two demo prompts’ residuals of the same task minus of different tasks, at the peak layer, with its permutation-test p. For regression every score is read as 1 − nMSE first.';

export function localitySection(models: readonly Located[], comparable: boolean): Section | null {
  if (models.length === 0) return null;
  const rows = models.map(({ m, r }) => {
    const a = r.average;
    const cfg = m.checkpoint?.manifest.model;
    const tvp = tvpOf(m);
    const sep = r.separability.find((s) => s.layer === a.peakLayer);
    return [
      m.label,
      m.task?.format ?? '?',
      cfg ? String(cfg.layers) : '?',
      tvp ? `TVP-loss at ℓ=${tvp.layer}, λ=${num(tvp.lambda)}` : 'ICL loss only',
      fmt(a.icl),
      fmt(a.baseline),
      String(a.peakLayer),
      fmt(a.peak),
      fmt(a.strength),
      fmt(a.recovered),
      fmt(a.entropy),
      a.halfWidth === null ? '–' : String(a.halfWidth),
      fmt(gainAt(a, 2)),
      fmt(gainAt(a, 3)),
      sep ? `${fmt(sep.difference)} (p ${fmt(sep.p)})` : '–',
    ];
  });
  const head = ['model', 'format', 'blocks', 'training', 'ICL', 'zero-shot', 'peak ℓ', 'peak (test)', 'strength', 'recovered', 'entropy', 'FWHM', '+2 ℓ', '+3 ℓ', 'separability Δ at peak'];
  const figs: string[] = [];
  const metric = models[0].r.metric;
  if (comparable && models.length >= 2 && models.every((x) => x.r.metric === metric)) figs.push(overlay(models, metric), metricBars(models));
  return {
    id: 'locality',
    title: models.length > 1 ? 'Locality and strength, model by model' : 'Locality and strength',
    html: `<p class="lead">How much of ICL one layer’s task vector recovers, and how concentrated in one layer that is. ${esc(DEFINITIONS)}</p>${table(head, rows)}${figs.length ? `<div class="figs">${figs.join('')}</div>` : ''}<div class="cmd">made by: ${models.map((x) => `<code>${esc(x.command)}</code>`).join(' ')}</div>`,
  };
}

function overlay(models: readonly Located[], metric: string): string {
  const curves: Series[] = models.map(({ m, i, r }) => {
    const c = r.search.average.curve;
    return { label: m.label, color: modelColor(i), dots: true, points: c.map((x) => [x.layers[0], x.all.mean] as const), band: c.map((x) => [x.layers[0], x.all.low, x.all.high] as const) };
  });
  return figure(
    lineChart({ label: 'task-vector curves of every model', xTitle: 'layer ℓ the task vector is injected at (0 = embeddings)', yTitle: `with the task vector: ${metricTitle(metric)}`, series: curves, integerX: true, yDomain: metric === 'accuracy' ? [0, 1] : undefined, width: 520 }),
    'Each model’s mean task-vector curve with its 95% band over tasks. A tall, narrow peak is a local task vector; a low or flat curve means the task is weakly or non-locally encoded.',
  );
}

function metricBars(models: readonly Located[]): string {
  return figure(
    bars({
      label: 'locality metrics per model',
      categories: ['strength', 'recovered', 'concentration', 'non-locality'],
      series: models.map(({ m, i, r }) => ({
        label: m.label,
        color: modelColor(i),
        values: [r.average.strength, r.average.recovered, r.average.entropy === null ? NaN : 1 - r.average.entropy, gainAt(r.average, 2)],
      })),
      yTitle: 'value (see the definitions above)',
    }),
    'Strength and recovered share: higher is a stronger task vector. Concentration = 1 − entropy: 1 when one layer carries all the gain. Non-locality = the best two layers injected together minus the best one: positive when the task is spread over layers.',
  );
}

/** Separability against layer, one line per model (one model in the task-vector section's rows). */
export function separabilityFigure(models: readonly Pick<Located, 'm' | 'i' | 'r'>[]): string {
  const series: Series[] = models.flatMap(({ m, i, r }) => {
    const s = r.separability;
    return [
      { label: m.label, color: modelColor(i), dots: true, points: s.map((x) => [x.layer, x.difference] as const) },
      ...(s.some((x) => x.p < 0.05) ? [{ label: `${m.label}: p < 0.05`, color: '#000000', dots: true, thin: true, points: s.filter((x) => x.p < 0.05).map((x) => [x.layer, x.difference] as const) }] : []),
    ];
  });
  const perms = models[0].r.separability[0]?.permutations ?? 0;
  return figure(
    lineChart({ label: 'separability of task vectors against layer', xTitle: 'layer ℓ (0 = embeddings)', yTitle: 'within − between task cosine', series, integerX: true, hlines: [{ value: 0, label: 'no separation', color: '#8a939e' }], legendExtra: [{ label: 'p < 0.05 (black dots)', color: '#000000', kind: 'dot' }] }),
    `How much more alike two demo prompts’ residuals at the read position (the last arrow; the query’s x in pairwise prompts) are when they share a task than when they do not (mean cosine, within − between), per layer. Black dots: p < 0.05 in a test that permutes the task labels ${perms} times.`,
  );
}

export interface SeriesRun {
  readonly m: ModelInput;
  readonly i: number;
  readonly points: readonly { readonly step: number; readonly r: LocalityResult }[];
}

/** Emergence: strength, recovered share, scores and peak layer at every checkpoint of each run. */
export function emergenceSection(runs: readonly SeriesRun[], command: string): Section | null {
  if (runs.length === 0) return null;
  const metric = runs[0].points[0].r.metric;
  const pts = (u: SeriesRun, f: (r: LocalityResult) => number | null) => u.points.map((p) => [p.step, f(p.r) ?? NaN] as const);
  const score: Series[] = runs.flatMap((u) => [
    { label: `${u.m.label}: task vector at peak ℓ`, color: modelColor(u.i), dots: true, points: pts(u, (r) => r.average.peak) },
    { label: `${u.m.label}: ICL`, color: modelColor(u.i), dashed: true, dots: true, points: pts(u, (r) => r.average.icl) },
    { label: `${u.m.label}: zero-shot`, color: modelColor(u.i), thin: true, points: pts(u, (r) => r.average.baseline) },
  ]);
  const strength: Series[] = runs.flatMap((u) => [
    { label: `${u.m.label}: strength`, color: modelColor(u.i), dots: true, points: pts(u, (r) => r.average.strength) },
    { label: `${u.m.label}: recovered`, color: modelColor(u.i), dashed: true, dots: true, points: pts(u, (r) => r.average.recovered) },
  ]);
  const peak: Series[] = runs.map((u) => ({ label: u.m.label, color: modelColor(u.i), dots: true, points: pts(u, (r) => r.average.peakLayer) }));
  const maxL = Math.max(1, ...runs.flatMap((u) => u.points.map((p) => p.r.separability.length - 1)));
  const anyStrength = strength.some((s) => s.points.some((p) => Number.isFinite(p[1])));
  const figs = [
    figure(
      lineChart({ label: 'task-vector and ICL score against step', xTitle: 'training step of the checkpoint', yTitle: metricTitle(metric), series: score, yDomain: metric === 'accuracy' ? [0, 1] : undefined, legendExtra: [{ label: 'zero-shot (thin)', color: '#8a939e' }] }),
      'Solid: zero-shot prompts with the task vector injected at the peak layer (test queries). Dashed: ICL with all demos. Thin: zero-shot without injection.',
    ),
    anyStrength
      ? figure(
          lineChart({ label: 'task-vector strength against step', xTitle: 'training step of the checkpoint', yTitle: 'share of ICL', series: strength }),
          'Solid: strength = peak ÷ ICL. Dashed: recovered = (peak − zero-shot) ÷ (ICL − zero-shot), the share of ICL’s gain that the task vector alone brings.',
        )
      : '<p>No strength curve: it divides by the ICL score, which is 0 at every checkpoint here.</p>',
    figure(
      lineChart({ label: 'peak layer against step', xTitle: 'training step of the checkpoint', yTitle: 'peak layer ℓ (dev)', series: peak, yDomain: [0, maxL], integerY: true }),
      'The layer where the injected task vector works best, per checkpoint. A peak that settles means a task vector has formed at that layer.',
    ),
  ];
  return {
    id: 'emergence',
    title: 'Emergence across checkpoints',
    html: `<p class="lead">Locality repeated on every checkpoint of a run: when does a task vector appear, where, and how strong is it?</p><div class="figs">${figs.join('')}</div><div class="cmd">made by: <code>${esc(command)}</code></div>`,
  };
}
