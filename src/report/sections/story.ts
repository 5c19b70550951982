/**
 * The report's first screen when it compares models: their task-vector curves on one chart per task
 * set (a baseline's flat curve against a TVP model's peak at its layer), the contrast in numbers,
 * and, when a study summary is given, the study's emergence table and its verdicts.
 */
import type { TvSearchResult } from '../../analysis/tv-search.js';
import { claimTables } from '../../study/report.js';
import type { StudySummary } from '../../study/results.js';
import { type Section, esc, figure, table } from '../html.js';
import { PALETTE, type Series, lineChart } from '../svg.js';
import { metricTitle } from './training.js';

export interface StoryModel {
  readonly label: string;
  readonly search: TvSearchResult;
  /** The layer it was trained to hold a task vector at (TVP-loss), or null for a baseline. */
  readonly tvpLayer: number | null;
  readonly command: string;
}

const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—');
const at = (r: TvSearchResult, l: number) => r.average.curve.find((c) => c.layers.length === 1 && c.layers[0] === l)?.test ?? NaN;

/** One line per model, in numbers: what the search found. */
export function storyLine(m: StoryModel): string {
  const a = m.search.average;
  const head = `${m.label}: ICL ${f2(a.icl.mean)}, zero-shot ${f2(a.baseline.all.mean)}`;
  if (m.tvpLayer !== null) return `${head}; task vector at its TVP layer ℓ=${m.tvpLayer}: ${f2(at(m.search, m.tvpLayer))} (${m.search.metric}, test queries)`;
  return `${head}; best task vector ${f2(a.best.test)} at ℓ=${a.best.layer} (dev-chosen, test queries): ${(m.search.metric === 'accuracy' ? 1 : -1) * (a.best.test - a.baseline.all.mean) > 0.1 ? 'a task vector' : 'no task vector'}`;
}

export function storySection(models: readonly StoryModel[], study: StudySummary | null): Section | null {
  if (models.length === 0 && !study) return null;
  const sets = new Map<string, StoryModel[]>();
  for (const m of models) {
    const key = `${m.search.metric}|${m.search.average.curve.length}`;
    sets.set(key, [...(sets.get(key) ?? []), m]);
  }
  const charts = [...sets.values()].map((ms) => {
    const r0 = ms[0].search;
    const series: Series[] = ms.map((m, i) => ({
      label: `${m.label}${m.tvpLayer !== null ? ` (TVP-loss at ℓ=${m.tvpLayer})` : ''}`,
      color: PALETTE[i % PALETTE.length],
      dots: true,
      dashed: m.tvpLayer === null,
      points: m.search.average.curve.map((c) => [c.layers[0], c.all.mean] as const),
      band: m.search.average.curve.map((c) => [c.layers[0], c.all.low, c.all.high] as const),
    }));
    const svg = lineChart({
      label: `task vector against layer: ${ms.map((m) => m.label).join(' vs ')}`,
      xTitle: 'layer ℓ the task vector is written at (0 = embeddings)',
      yTitle: `zero-shot + task vector: ${metricTitle(r0.metric)}`,
      series,
      hlines: [
        { value: r0.average.icl.mean, label: `${r0.options.shots}-shot ICL`, color: '#009E73' },
        { value: r0.average.baseline.all.mean, label: 'zero-shot', color: '#6b7280', dashed: true },
      ],
      integerX: true,
      ...(r0.metric === 'accuracy' ? { yDomain: [0, 1] as const } : {}),
    });
    return figure(
      svg,
      `Hendel et al.'s task vector θ (the last arrow's residual at layer ℓ, averaged over ${r0.options.prompts} demo prompts per task) written over the arrow of zero-shot prompts "x_q →", by layer; mean over tasks with 95% bands. A flat curve at zero-shot: no layer holds the task apart from the query.`,
      ms.map((m) => m.command).join('; '),
    );
  });
  const rows = models.map((m) => {
    const a = m.search.average;
    return [
      m.label,
      m.tvpLayer === null ? 'plain ICL' : `TVP-loss, ℓ=${m.tvpLayer}`,
      f2(a.icl.mean),
      f2(a.baseline.all.mean),
      `${f2(a.best.test)} (ℓ=${a.best.layer})`,
      m.tvpLayer === null ? '—' : f2(at(m.search, m.tvpLayer)),
    ];
  });
  const metric = (m: StoryModel) => (m.search.metric === 'accuracy' ? 'accuracy' : 'nMSE, lower is better');
  rows.forEach((r, i) => r.splice(2, 0, metric(models[i])));
  const contrast = models.length ? table(['model', 'training', 'metric', 'ICL', 'zero-shot', 'best task vector (dev-chosen ℓ)', 'task vector at the TVP layer'], rows) : '';
  let studyHtml = '';
  if (study) {
    const claims = claimTables(study);
    const emergence = claims[0];
    studyHtml = `<h3>The reproduction study (${esc(study.finished)} of ${esc(study.jobs)} runs; mean over seeds [95% bootstrap interval])</h3>
<ul>${claims.map((c) => `<li><strong>${esc(c.claim)}: ${esc(c.verdict)}</strong>. ${esc(c.why)}.</li>`).join('')}</ul>
<h4>Emergence: baselines by condition</h4>${table(emergence.header, emergence.rows)}
<p class="note">From <code>${esc(study.command)}</code>, tvlens ${esc(study.version)}, commit <code>${esc(study.commit.slice(0, 12))}</code>. The full tables are in reports/reproduction.html.</p>`;
  }
  return {
    id: 'story',
    title: 'What the shipped models show',
    html: `<div class="figs">${charts.join('')}</div>${contrast}${studyHtml}`,
  };
}
