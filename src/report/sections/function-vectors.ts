/** Function vectors (Todd et al.): the AIE heat map (block × head) and FV against Hendel's TV per layer, from `tvlens fv` output. */
import type { FunctionVectorResult } from '../../analysis/function-vectors.js';
import { type Section, esc, figure, html } from '../html.js';
import { type Series, heatmap, lineChart, num } from '../svg.js';
import { metricTitle } from './training.js';

const FV = '#0072B2';
const TV = '#D55E00';

/** The colour domain: 0 included, the ends rounded outward at the data's own scale (AIEs can be a few hundredths). */
function aieDomain(values: readonly number[]): [number, number] {
  const lo = Math.min(0, ...values.filter(Number.isFinite));
  const hi = Math.max(0, ...values.filter(Number.isFinite));
  const step = 10 ** Math.floor(Math.log10(Math.max(Math.abs(lo), Math.abs(hi)) || 1));
  return [Math.floor(lo / step) * step, Math.max(Math.ceil(hi / step) * step, step / 10)];
}

export function aieFigure(label: string, r: FunctionVectorResult, command: string): string {
  const H = r.aie[0]?.length ?? 0;
  const svg = heatmap({
    label: `average indirect effect per head, ${label}`,
    rows: r.aie.map((_, l) => `block ${l}`),
    cols: Array.from({ length: H }, (_, h) => `h${h}`),
    values: r.aie,
    xTitle: 'head (h0 = head 0)',
    yTitle: 'block',
    valueTitle: r.aieUnit === 'p(correct)' ? 'AIE, ΔP(correct)' : 'AIE, −ΔnMSE',
    domain: aieDomain(r.aie.flat()),
  });
  const o = r.options as { shuffled?: number; topK?: number };
  const caption = html`${label}: each head’s mean output (its <code>attn.hook_z</code> at the last arrow, averaged over clean prompts of the task) written into shuffled-label prompts, \
and the rise in ${r.aieUnit === 'p(correct)' ? 'the probability of the correct answer' : '−nMSE'}, averaged over ${o.shuffled ?? '?'} prompts per task and ${r.tasks.length} tasks. \
Top-${o.topK ?? r.heads.length} heads: ${r.heads.map((h) => `block ${h.layer} head ${h.head} (${num(h.aie)})`).join(', ')}.`;
  return figure(svg, caption, command);
}

export function fvCurveFigure(label: string, r: FunctionVectorResult, command: string): string {
  const a = r.average;
  const series: Series[] = [
    { label: `function vector, added (95% CI over tasks)`, color: FV, dots: true, points: a.curve.map((c) => [c.layer, c.all.mean] as const), band: a.curve.map((c) => [c.layer, c.all.low, c.all.high] as const) },
    ...(r.tv ? [{ label: 'task vector (Hendel), written over (95% CI)', color: TV, dots: true, dashed: true, points: r.tv.curve.map((c) => [c.layer, c.all.mean] as const), band: r.tv.curve.map((c) => [c.layer, c.all.low, c.all.high] as const) }] : []),
  ];
  const L = Math.max(...a.curve.map((c) => c.layer));
  const acc = r.metric === 'accuracy';
  const svg = lineChart({
    label: `function vector against task vector, ${label}`,
    xTitle: 'layer ℓ the vector is injected at (0 = embeddings)',
    yTitle: `zero-shot prompts: ${metricTitle(r.metric)}`,
    series,
    hlines: [
      { value: a.icl.mean, label: 'ICL', color: '#009E73' },
      { value: a.baseline.mean, label: 'zero-shot baseline', color: '#6b7280' },
    ],
    // A marker's label is written to its right, so one at the last layer would be cut off: the caption names it instead.
    vlines: [{ value: a.best.layer, label: `FV best ℓ=${a.best.layer}`, color: FV }, ...(r.tv ? [{ value: r.tv.best.layer, label: `TV best ℓ=${r.tv.best.layer}`, color: TV }] : [])].filter((v) => v.value < L),
    integerX: true,
    yDomain: acc ? [0, 1] : undefined,
    width: Math.max(460, 120 + L * 60),
  });
  const caption = `${label}: the function vector (the top heads’ mean outputs through their rows of W_O, summed) added to the last arrow of zero-shot prompts at layer ℓ, \
against Hendel et al.’s task vector (the mean residual) written over it, on the same demo and zero-shot prompts. \
Best layers on the dev half, scored on the test half: FV ${num(a.best.test)} at ℓ=${a.best.layer}\
${r.tv ? `, TV ${num(r.tv.best.test)} at ℓ=${r.tv.best.layer}` : ''} (ICL ${num(a.icl.mean)}, zero-shot ${num(a.baseline.mean)}).`;
  return figure(svg, caption, command);
}

export function fvSection(models: readonly { label: string; r: FunctionVectorResult; command: string }[]): Section | null {
  if (models.length === 0) return null;
  const figs = models.flatMap(({ label, r, command }) => [aieFigure(label, r, command), fvCurveFigure(label, r, command)]);
  return {
    id: 'function-vectors',
    title: 'Function vectors: which heads carry the task',
    html: `<p class="lead">Heads ranked by their causal effect on prompts whose labels were shuffled (Todd et al. 2024); the top heads’ outputs, summed, make a function vector, compared here with the task vector layer by layer.</p><div class="figs">${figs.join('')}</div>`,
  };
}
