/**
 * Hand-made SVG charts: line charts with confidence bands, heatmaps, scatter plots and grouped bars.
 * They are rendered in Node as strings, so a report shows its figures with no script at all, and
 * the same data always gives the same bytes (coordinates rounded to 0.1 px, numbers formatted
 * with fixed rules). Every mark carries a <title>, which the browser shows on hover.
 */
import { esc } from './html.js';

/** Okabe–Ito: distinguishable with the common colour-vision deficiencies. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'] as const;

/** n distinct hues for many categories (tasks), evenly spaced, fixed saturation and lightness. */
export function hues(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `hsl(${Math.round((360 * i) / Math.max(n, 1) + 200) % 360},62%,${i % 2 ? 38 : 50}%)`);
}

const r1 = (v: number): string => String(Math.round(v * 10) / 10);

/** A number for a label: up to 3 significant decimals, no trailing zeros, no "-0". */
export function num(v: number, digits = 3): string {
  if (typeof v !== 'number') return 'NaN'; // a hand-edited analysis output can hold anything here
  if (!Number.isFinite(v)) return String(v);
  const s = Math.abs(v) >= 1000 ? String(Math.round(v)) : v.toPrecision(digits);
  const n = Number(s);
  return Object.is(n, -0) ? '0' : String(n);
}

/** "Nice" tick values covering [lo, hi] (Heckbert's algorithm). */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = niceStep((hi - lo) / count);
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

function extent(values: readonly number[], pad = 0): [number, number] {
  const xs = values.filter(Number.isFinite);
  if (xs.length === 0) return [0, 1];
  let lo = Math.min(...xs);
  let hi = Math.max(...xs);
  if (lo === hi) [lo, hi] = [lo - 0.5, hi + 0.5];
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

const scale = (d: readonly [number, number], r: readonly [number, number]) => (v: number) => r[0] + ((v - d[0]) / (d[1] - d[0] || 1)) * (r[1] - r[0]);

function open(f: Frame, kind: string, label: string): string {
  return `<svg class="chart ${kind}" role="img" aria-label="${esc(label)}" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" xmlns="http://www.w3.org/2000/svg">`;
}

/** Axes with gridlines, tick labels and axis titles. `xLabels` replaces numeric x tick text. */
function axes(f: Frame, x: (v: number) => number, y: (v: number) => number, xt: number[], yt: number[], xTitle: string, yTitle: string, xLabels?: (v: number) => string): string {
  const [x0, x1, y0, y1] = [f.left, f.width - f.right, f.height - f.bottom, f.top];
  const parts: string[] = [`<g class="axes">`];
  for (const t of yt) parts.push(`<line class="grid" x1="${x0}" x2="${x1}" y1="${r1(y(t))}" y2="${r1(y(t))}"/><text class="tick" x="${x0 - 6}" y="${r1(y(t) + 4)}" text-anchor="end">${num(t)}</text>`);
  for (const t of xt) parts.push(`<line class="grid" x1="${r1(x(t))}" x2="${r1(x(t))}" y1="${y0}" y2="${y1}"/><text class="tick" x="${r1(x(t))}" y="${y0 + 16}" text-anchor="middle">${esc(xLabels ? xLabels(t) : num(t))}</text>`);
  parts.push(`<line class="axis" x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}"/><line class="axis" x1="${x0}" x2="${x0}" y1="${y0}" y2="${y1}"/>`);
  parts.push(`<text class="title" x="${r1((x0 + x1) / 2)}" y="${f.height - 6}" text-anchor="middle">${esc(xTitle)}</text>`);
  // A long y title shrinks to fit the plot's height rather than run off the chart.
  const fit = Math.min(12, Math.max(8, ((y0 - y1) / Math.max(yTitle.length, 1)) * 1.75));
  parts.push(`<text class="title" transform="translate(14 ${r1((y0 + y1) / 2)}) rotate(-90)" text-anchor="middle"${fit < 12 ? ` style="font-size:${r1(fit)}px"` : ''}>${esc(yTitle)}</text>`);
  parts.push('</g>');
  return parts.join('');
}

export interface LegendItem {
  readonly label: string;
  readonly color: string;
  readonly dashed?: boolean;
  readonly kind?: 'line' | 'dot' | 'band' | 'box';
}

/** A legend laid out in rows under the chart title area (top), wrapping at the plot width. */
function legend(items: readonly LegendItem[], x0: number, y0: number, maxWidth: number): { svg: string; height: number } {
  if (items.length === 0) return { svg: '', height: 0 };
  const parts: string[] = ['<g class="legend">'];
  let [x, y] = [x0, y0];
  for (const it of items) {
    const w = 34 + it.label.length * 6.6;
    if (x + w > x0 + maxWidth && x > x0) [x, y] = [x0, y + 16];
    const swatch =
      it.kind === 'dot'
        ? `<circle cx="${r1(x + 7)}" cy="${y - 4}" r="4" fill="${it.color}"/>`
        : it.kind === 'band' || it.kind === 'box'
          ? `<rect x="${r1(x)}" y="${y - 9}" width="16" height="10" fill="${it.color}"${it.kind === 'band' ? ' opacity="0.25"' : ''}/>`
          : `<line x1="${r1(x)}" x2="${r1(x + 16)}" y1="${y - 4}" y2="${y - 4}" stroke="${it.color}" stroke-width="2.5"${it.dashed ? ' stroke-dasharray="5 3"' : ''}/>`;
    parts.push(`${swatch}<text x="${r1(x + 21)}" y="${y}">${esc(it.label)}</text>`);
    x += w;
  }
  parts.push('</g>');
  return { svg: parts.join(''), height: y - y0 + 16 };
}

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  /** A shaded interval [x, low, high] around the line. */
  readonly band?: readonly (readonly [number, number, number])[];
  readonly dashed?: boolean;
  /** Thin, unlabelled context lines (e.g. one per task) stay out of the legend. */
  readonly thin?: boolean;
  readonly dots?: boolean;
}

export interface RefLine {
  readonly value: number;
  readonly label: string;
  readonly color: string;
  readonly dashed?: boolean;
}

export interface LineChart {
  readonly label: string;
  readonly xTitle: string;
  readonly yTitle: string;
  readonly series: readonly Series[];
  /** Horizontal reference lines (baselines), labelled at the right end. */
  readonly hlines?: readonly RefLine[];
  /** Vertical markers (the best layer), labelled at the top. */
  readonly vlines?: readonly RefLine[];
  readonly yDomain?: readonly [number, number];
  /** Tick at every integer x (layers, shots) instead of nice ticks. */
  readonly integerX?: boolean;
  /** The same for y (a layer index). */
  readonly integerY?: boolean;
  /** Extra legend items (for thin lines grouped by colour, say). */
  readonly legendExtra?: readonly LegendItem[];
  readonly width?: number;
  readonly height?: number;
}

export function lineChart(c: LineChart): string {
  const items: LegendItem[] = [
    ...c.series.filter((s) => !s.thin).map((s) => ({ label: s.label, color: s.color, dashed: s.dashed, kind: (s.dots && s.points.length === 1 ? 'dot' : 'line') as LegendItem['kind'] })),
    ...(c.hlines ?? []).map((h) => ({ label: h.label, color: h.color, dashed: h.dashed ?? true })),
    ...(c.legendExtra ?? []),
  ];
  const width = c.width ?? 460;
  const lg = legend(items, 56, 14, width - 70);
  const f: Frame = { width, height: (c.height ?? 280) + lg.height, left: 56, right: 14, top: 12 + lg.height, bottom: 42 };
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [
    ...c.series.flatMap((s) => [...s.points.map((p) => p[1]), ...(s.band ?? []).flatMap((b) => [b[1], b[2]])]),
    ...(c.hlines ?? []).map((h) => h.value),
  ];
  const xd = extent(xs);
  const yd: [number, number] = c.yDomain ? [c.yDomain[0], c.yDomain[1]] : extent(ys, 0.05);
  const x = scale(xd, [f.left + 8, f.width - f.right - 8]);
  const y = scale(yd, [f.height - f.bottom, f.top]);
  const yv = y;
  const xt = c.integerX ? integerTicks(xd) : ticks(xd[0], xd[1], 6);
  const parts = [open(f, 'line', c.label), lg.svg, axes(f, x, y, xt, c.integerY ? integerTicks(yd) : ticks(yd[0], yd[1], 5), c.xTitle, c.yTitle)];
  const pts = (p: readonly (readonly [number, number])[]) => p.filter((q) => Number.isFinite(q[1])).map((q) => `${r1(x(q[0]))},${r1(yv(q[1]))}`).join(' ');
  parts.push('<g class="marks">');
  for (const s of c.series.filter((q) => q.band)) {
    const b = s.band!.filter((q) => Number.isFinite(q[1]) && Number.isFinite(q[2]));
    const poly = [...b.map((q) => `${r1(x(q[0]))},${r1(yv(q[2]))}`), ...[...b].reverse().map((q) => `${r1(x(q[0]))},${r1(yv(q[1]))}`)].join(' ');
    parts.push(`<polygon class="band" points="${poly}" fill="${s.color}" opacity="0.18"><title>${esc(s.label)}: 95% confidence interval</title></polygon>`);
  }
  for (const s of c.series) {
    const cls = s.thin ? 'series thin' : 'series';
    parts.push(`<polyline class="${cls}" points="${pts(s.points)}" fill="none" stroke="${s.color}" stroke-width="${s.thin ? 1 : 2.2}"${s.thin ? ' opacity="0.45"' : ''}${s.dashed ? ' stroke-dasharray="6 4"' : ''}><title>${esc(s.label)}</title></polyline>`);
    if (s.dots || s.points.length === 1) {
      for (const [px, py] of s.points) if (Number.isFinite(py)) parts.push(`<circle class="dot" cx="${r1(x(px))}" cy="${r1(yv(py))}" r="${s.thin ? 2 : 3}" fill="${s.color}"><title>${esc(s.label)}: x=${num(px)}, y=${num(py)}</title></circle>`);
    }
  }
  for (const h of c.hlines ?? []) {
    if (!Number.isFinite(h.value)) continue;
    parts.push(`<line class="ref" x1="${f.left}" x2="${f.width - f.right}" y1="${r1(yv(h.value))}" y2="${r1(yv(h.value))}" stroke="${h.color}" stroke-width="1.6"${h.dashed === false ? '' : ' stroke-dasharray="5 3"'}><title>${esc(h.label)}: ${num(h.value)}</title></line>`);
  }
  (c.vlines ?? []).forEach((v, i) => {
    // Labels stack downwards, so two markers at one x stay readable.
    parts.push(`<line class="ref" x1="${r1(x(v.value))}" x2="${r1(x(v.value))}" y1="${f.top}" y2="${f.height - f.bottom}" stroke="${v.color}" stroke-width="1.4" stroke-dasharray="2 3"/><text class="mark-label" x="${r1(x(v.value) + 4)}" y="${f.top + 12 + 14 * i}" fill="${v.color}">${esc(v.label)}</text>`);
  });
  parts.push('</g></svg>');
  return parts.join('');
}

function integerTicks([lo, hi]: [number, number]): number[] {
  const a = Math.ceil(lo);
  const b = Math.floor(hi);
  const step = Math.max(1, Math.ceil((b - a + 1) / 12));
  const out: number[] = [];
  for (let v = a; v <= b; v += step) out.push(v);
  return out;
}

export interface Heatmap {
  readonly label: string;
  /** Row labels, top to bottom (layers). */
  readonly rows: readonly string[];
  /** Column labels, left to right (prompt tokens, with positions). */
  readonly cols: readonly string[];
  /** A second, smaller line under each column label (the token's role in the prompt). */
  readonly subCols?: readonly string[];
  /** values[r][c]; NaN is drawn as an empty cell. */
  readonly values: readonly (readonly number[])[];
  readonly xTitle: string;
  readonly yTitle: string;
  /** What a value means, under the colour bar. */
  readonly valueTitle: string;
  /** Colour domain; default [min(0, data), max(1, data)]: 0 white, 1 full colour, negatives red. */
  readonly domain?: readonly [number, number];
}

/**
 * Diverging blue (positive) / red (negative) on white. Both signs share one scale, the larger
 * end of the domain, so a tiny negative value stays pale instead of saturating.
 */
function heatColor(v: number, [lo, hi]: readonly [number, number]): string {
  if (!Number.isFinite(v)) return '#f3f3f3';
  const t = Math.min(1, Math.abs(v) / (Math.max(Math.abs(lo), Math.abs(hi)) || 1));
  const [r, g, b] = v >= 0 ? [33, 102, 172] : [178, 24, 43];
  const mix = (c: number) => Math.round(255 + (c - 255) * t);
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`;
}

export function heatmap(h: Heatmap): string {
  const flat = h.values.flat().filter(Number.isFinite);
  // Round the ends outward to one decimal, so the colour bar reads "-0.3 … 1", not "-0.000166".
  const domain = h.domain ?? [Math.floor(Math.min(0, ...flat) * 10) / 10, Math.ceil(Math.max(1, ...flat) * 10) / 10];
  const cell = Math.max(16, Math.min(34, Math.floor(640 / Math.max(h.cols.length, 1))));
  const rowH = Math.max(26, Math.min(40, Math.floor(160 / Math.max(h.rows.length, 1))));
  const left = 30 + Math.max(...h.rows.map((r) => r.length)) * 6.6;
  const bottom = h.subCols ? 62 : 48;
  const f: Frame = { width: Math.round(left + h.cols.length * cell + 70), height: 30 + h.rows.length * rowH + bottom, left, right: 70, top: 30, bottom };
  const parts = [open(f, 'heatmap', h.label), `<text class="title" x="${r1(left)}" y="16">colour: ${esc(h.valueTitle)}</text>`];
  parts.push('<g class="marks">');
  h.values.forEach((row, r) =>
    row.forEach((v, c) => {
      parts.push(`<rect class="cell" x="${r1(f.left + c * cell)}" y="${f.top + r * rowH}" width="${cell - 1}" height="${rowH - 1}" fill="${heatColor(v, domain)}"><title>${esc(h.rows[r])}, ${esc(h.cols[c])}: ${num(v)}</title></rect>`);
    }),
  );
  parts.push('</g><g class="axes">');
  h.rows.forEach((l, r) => parts.push(`<text class="tick" x="${r1(f.left - 6)}" y="${f.top + r * rowH + rowH / 2 + 4}" text-anchor="end">${esc(l)}</text>`));
  h.cols.forEach((l, c) => {
    const x = r1(f.left + c * cell + cell / 2);
    const y = f.top + h.rows.length * rowH;
    parts.push(`<text class="tick token" x="${x}" y="${y + 15}" text-anchor="middle">${esc(l)}</text>`);
    if (h.subCols) parts.push(`<text class="tick" x="${x}" y="${y + 29}" text-anchor="middle" font-size="9.5">${esc(h.subCols[c])}</text>`);
  });
  const plotW = h.cols.length * cell;
  parts.push(`<text class="title" x="${r1(f.left + plotW / 2)}" y="${f.height - 6}" text-anchor="middle">${esc(h.xTitle)}</text>`);
  parts.push(`<text class="title" transform="translate(14 ${f.top + (h.rows.length * rowH) / 2}) rotate(-90)" text-anchor="middle">${esc(h.yTitle)}</text>`);
  // Colour bar: five steps from the low end to the high end of the domain.
  const bx = Math.round(f.left + plotW + 20);
  const bh = h.rows.length * rowH;
  const steps = 20;
  for (let i = 0; i < steps; i++) {
    const v = domain[1] - ((domain[1] - domain[0]) * (i + 0.5)) / steps;
    parts.push(`<rect x="${bx}" y="${r1(f.top + (i * bh) / steps)}" width="14" height="${r1(bh / steps + 0.5)}" fill="${heatColor(v, domain)}"/>`);
  }
  const zeroAt = r1(f.top + (domain[1] / (domain[1] - domain[0])) * bh);
  parts.push(`<text class="tick" x="${bx + 18}" y="${f.top + 8}">${num(domain[1])}</text><text class="tick" x="${bx + 18}" y="${f.top + bh}">${num(domain[0])}</text>`);
  if (domain[0] < 0 && domain[1] > 0 && Number(zeroAt) > f.top + 20 && Number(zeroAt) < f.top + bh - 12) parts.push(`<text class="tick" x="${bx + 18}" y="${zeroAt}">0</text>`);
  parts.push('</g></svg>');
  return parts.join('');
}

export interface ScatterPoint {
  readonly x: number;
  readonly y: number;
  readonly group: number;
  readonly title: string;
}

export interface Scatter {
  readonly label: string;
  readonly xTitle: string;
  readonly yTitle: string;
  readonly points: readonly ScatterPoint[];
  readonly groups: readonly { readonly label: string; readonly color: string }[];
  /** Points drawn larger with a ring: group centroids, say. */
  readonly highlight?: readonly ScatterPoint[];
}

export function scatter(s: Scatter): string {
  const width = 520;
  const lg = legend(s.groups.map((g) => ({ label: g.label, color: g.color, kind: 'dot' as const })), 56, 14, width - 70);
  const f: Frame = { width, height: 320 + lg.height, left: 56, right: 14, top: 12 + lg.height, bottom: 42 };
  const all = [...s.points, ...(s.highlight ?? [])];
  const xd = extent(all.map((p) => p.x), 0.05);
  const yd = extent(all.map((p) => p.y), 0.05);
  const x = scale(xd, [f.left + 6, f.width - f.right - 6]);
  const y = scale(yd, [f.height - f.bottom - 6, f.top + 6]);
  const parts = [open(f, 'scatter', s.label), lg.svg, axes(f, x, y, ticks(xd[0], xd[1], 5), ticks(yd[0], yd[1], 5), s.xTitle, s.yTitle), '<g class="marks">'];
  for (const p of s.points) parts.push(`<circle class="dot" cx="${r1(x(p.x))}" cy="${r1(y(p.y))}" r="3" fill="${s.groups[p.group].color}" opacity="0.7"><title>${esc(p.title)}</title></circle>`);
  for (const p of s.highlight ?? []) parts.push(`<circle class="dot centroid" cx="${r1(x(p.x))}" cy="${r1(y(p.y))}" r="6" fill="${s.groups[p.group].color}" stroke="#000" stroke-width="1.2"><title>${esc(p.title)}</title></circle>`);
  parts.push('</g></svg>');
  return parts.join('');
}

export interface Bars {
  readonly label: string;
  /** One group of bars per category (a metric, say). */
  readonly categories: readonly string[];
  /** One bar per series in each category (a model); values[s][c], with optional [low, high]. */
  readonly series: readonly { readonly label: string; readonly color: string; readonly values: readonly number[]; readonly intervals?: readonly (readonly [number, number] | null)[] }[];
  readonly yTitle: string;
  readonly yDomain?: readonly [number, number];
}

export function bars(b: Bars): string {
  const width = Math.max(420, 90 + b.categories.length * (b.series.length * 22 + 30));
  const lg = legend(b.series.map((s) => ({ label: s.label, color: s.color, kind: 'box' as const })), 56, 14, width - 70);
  const f: Frame = { width, height: 260 + lg.height, left: 56, right: 14, top: 12 + lg.height, bottom: 42 };
  const vals = b.series.flatMap((s) => [...s.values, ...(s.intervals ?? []).flatMap((i) => (i ? [i[0], i[1]] : []))]).filter(Number.isFinite);
  const yd: [number, number] = b.yDomain ? [b.yDomain[0], b.yDomain[1]] : [Math.min(0, ...vals), Math.max(0, ...vals) * 1.08 || 1];
  const y = scale(yd, [f.height - f.bottom, f.top]);
  const groupW = (f.width - f.left - f.right) / b.categories.length;
  const barW = Math.min(26, (groupW - 16) / b.series.length);
  const parts = [open(f, 'bars', b.label), lg.svg, axes(f, (v) => f.left + groupW * (v + 0.5), y, [], ticks(yd[0], yd[1], 5), '', b.yTitle), '<g class="marks">'];
  b.categories.forEach((cat, c) => {
    const gx = f.left + groupW * c + (groupW - barW * b.series.length) / 2;
    b.series.forEach((s, i) => {
      const v = s.values[c];
      if (!Number.isFinite(v)) return;
      const [ya, yb] = [y(Math.max(0, v)), y(Math.min(0, v))];
      parts.push(`<rect class="bar" x="${r1(gx + i * barW)}" y="${r1(ya)}" width="${r1(barW - 2)}" height="${r1(Math.max(0.5, yb - ya))}" fill="${s.color}"><title>${esc(s.label)}, ${esc(cat)}: ${num(v)}</title></rect>`);
      const iv = s.intervals?.[c];
      if (iv) {
        const cx = r1(gx + i * barW + (barW - 2) / 2);
        parts.push(`<line class="whisker" x1="${cx}" x2="${cx}" y1="${r1(y(iv[0]))}" y2="${r1(y(iv[1]))}" stroke="#222" stroke-width="1.2"/>`);
      }
    });
    parts.push(`<text class="tick" x="${r1(f.left + groupW * (c + 0.5))}" y="${f.height - f.bottom + 16}" text-anchor="middle">${esc(cat)}</text>`);
  });
  parts.push('</g></svg>');
  return parts.join('');
}
