/**
 * The reproduction report of a study as one self-contained HTML page: the verdict and table of each
 * claim (study/report.ts decides them), and per group of the grid a chart of the task-vector
 * curves of its cells, baselines dashed, TVP-loss models solid.
 */
import path from 'node:path';
import { type ClaimTable, claimTables } from '../study/report.js';
import type { Cell, StudySummary } from '../study/results.js';
import { writeFileAtomic } from '../util/fs.js';
import { esc, figure, html, page, table } from './html.js';
import { PALETTE, type Series, lineChart } from './svg.js';

const cellLabel = (c: Cell) => [Object.entries(c.factors).map(([k, v]) => `${k.split('.').pop()} ${v}`).join(', '), c.kind === 'baseline' ? 'baseline' : `${c.kind} λ=${c.lambda}`].filter(Boolean).join(': ');

/** One chart per group and metric: mean TV score against layer for each of its cells. */
function curveFigures(s: StudySummary): string[] {
  const groups = new Map<string, Cell[]>();
  for (const c of s.cells) if (c.tvCurve.length) groups.set(`${c.group}|${c.metric}`, [...(groups.get(`${c.group}|${c.metric}`) ?? []), c]);
  return [...groups.values()].map((cells) => {
    const c0 = cells[0];
    const series: Series[] = cells.map((c, i) => ({
      label: `${cellLabel(c)} (${c.seeds.length} seeds)`,
      color: PALETTE[i % PALETTE.length],
      dashed: c.kind === 'baseline',
      dots: true,
      points: c.tvCurve.map((v, l) => [l, v] as const),
    }));
    const base = cells.find((c) => c.kind === 'baseline') ?? c0;
    const svg = lineChart({
      label: `task vector against layer, ${c0.group}`,
      xTitle: 'layer ℓ (0 = embeddings)',
      yTitle: c0.metric === 'accuracy' ? 'zero-shot + TV: accuracy' : 'zero-shot + TV: normalised MSE',
      series,
      hlines: [
        { value: base.figures.icl?.mean ?? NaN, label: 'ICL (baseline)', color: '#009E73' },
        { value: base.figures.zeroShot?.mean ?? NaN, label: 'zero-shot', color: '#6b7280', dashed: true },
      ].filter((h) => Number.isFinite(h.value)),
      integerX: true,
      ...(c0.metric === 'accuracy' ? { yDomain: [0, 1] as const } : {}),
    });
    return figure(svg, `${c0.group}: ${c0.family}, mean over seeds of the task-vector score at each layer (all zero-shot queries).`);
  });
}

/**
 * One chart per group of the second wave: Hendel et al.'s per-demo-set task vector against layer
 * (solid) and ICL with the last position blind to the demos from block ℓ on (dashed), per cell.
 */
function emergenceFigures(s: StudySummary): string[] {
  const groups = new Map<string, Cell[]>();
  for (const c of s.cells) if (c.kind === 'baseline' && c.curves?.hendel) groups.set(`${c.group}|${c.metric}`, [...(groups.get(`${c.group}|${c.metric}`) ?? []), c]);
  return [...groups.values()].map((cells) => {
    const c0 = cells[0];
    const series: Series[] = cells.flatMap((c, i) => [
      { label: `${cellLabel(c)}: TV per demo set`, color: PALETTE[i % PALETTE.length], dots: true, points: (c.curves.hendel ?? []).map((v, l) => [l, v] as const) },
      { label: `${cellLabel(c)}: ICL, demos masked from ℓ`, color: PALETTE[i % PALETTE.length], dashed: true, points: (c.curves.masked ?? []).map((v, l) => [l, v] as const) },
    ]);
    const svg = lineChart({
      label: `Hendel task vector and attention masking against layer, ${c0.group}`,
      xTitle: 'layer ℓ (0 = embeddings)',
      yTitle: c0.metric === 'accuracy' ? 'accuracy' : 'normalised MSE',
      series,
      hlines: [{ value: c0.figures.zeroShot?.mean ?? NaN, label: 'zero-shot', color: '#6b7280', dashed: true }].filter((h) => Number.isFinite(h.value)),
      integerX: true,
      ...(c0.metric === 'accuracy' ? { yDomain: [0, 1] as const } : {}),
    });
    return figure(svg, `${c0.group}: mean over seeds. Solid: θ(S) from two dummy queries written over the zero-shot arrow at ℓ. Dashed: ICL when the last position may not attend to the demos in blocks ℓ … L−1 (at ℓ = L nothing is masked).`);
  });
}

function claimHtml(t: ClaimTable): string {
  const cls = t.verdict.replace(/ /g, '-');
  return `<p><strong>Verdict: <span class="verdict ${cls}">${esc(t.verdict)}</span></strong>. ${esc(t.why)}.</p>
<p class="note">Rule: ${esc(t.rule)}.</p>
${t.rows.length ? table(t.header, t.rows) : ''}`;
}

/** The sections of one study: its summary, its charts and each claim. `tag` keeps ids apart when a page shows several studies. */
function studySections(s: StudySummary, tag: string, heading: string): { id: string; title: string; html: string }[] {
  const claims = claimTables(s);
  const intro = `<p>${esc(s.description)}</p>
<p>${s.finished} of ${s.jobs} jobs finished. tvlens ${esc(s.version)}, commit <code>${esc(s.commit)}</code>, made by <code>${esc(s.command)}</code>.
Each figure is the mean over seeds with a 95% percentile-bootstrap interval over seeds (accuracies stay in [0, 1]); accuracy for token tasks,
normalised MSE (lower is better) for regression. Layer ℓ: 0 = embeddings, ℓ ≥ 1 = output of block ℓ. TV: Hendel et al.'s task vector
(θ replaces the zero-shot arrow state), best layer chosen on dev queries, scored on test queries.</p>
<ul>${claims.map((c) => `<li>${esc(c.claim)}: <strong>${esc(c.verdict)}</strong></li>`).join('')}</ul>
${s.missing.length ? `<p class="note">Not finished: ${esc(s.missing.join(', '))}.</p>` : ''}`;
  const emergence = emergenceFigures(s);
  return [
    { id: `${tag}summary`, title: `${heading}Summary`, html: intro },
    ...(emergence.length ? [{ id: `${tag}emergence`, title: `${heading}Hendel's task vector and attention masking, by group`, html: `<div class="figs">${emergence.join('')}</div>` }] : []),
    { id: `${tag}curves`, title: `${heading}Task vector against layer, by group`, html: `<div class="figs">${curveFigures(s).join('')}</div>` },
    ...claims.map((c, i) => ({ id: `${tag}claim-${i}`, title: `${heading}${c.claim}`, html: claimHtml(c) })),
  ];
}

/** The reproduction page of one study, or of several (the newest first), each with its own sections. */
export function reproductionHtml(...studies: StudySummary[]): string {
  const several = studies.length > 1;
  return page({
    title: `tvlens reproduction: ${studies.map((x) => x.study).join(' + ')}`,
    subtitle: 'Yang et al. (2025), Task Vectors in In-Context Learning: Emergence, Formation, and Benefit',
    stamp: studies.map((x) => `Study ${x.study}, commit ${x.commit.slice(0, 12)}.`).join(' '),
    problems: [],
    sections: studies.flatMap((x, i) => studySections(x, several ? `s${i}-` : '', several ? `${x.study}: ` : '')),
    scripts: [],
  });
}

/** Writes reproduction.html into the study folder (and at `extra` too); returns the files written. */
export function writeReproductionHtml(dir: string, s: StudySummary, extra?: string): string[] {
  const html = reproductionHtml(s);
  const files = [path.join(dir, 'reproduction.html'), ...(extra ? [extra] : [])];
  for (const f of files) writeFileAtomic(f, html);
  return files;
}
