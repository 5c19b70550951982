/**
 * The scale curve as a small static SVG: one log-log panel per axis (d_model, layers, sequence),
 * milliseconds of each measured operation against the axis, and each line's fitted slope beside
 * its arithmetic slope in the legend.
 */
import type { ScaleCurve } from './scale.js';
import { AXES, type Axis, METRICS, type Metric } from './scale-point.js';

const W = 300;
const H = 230;
const PAD = { l: 48, r: 10, t: 26, b: 36 };
const COLORS: Record<Metric, string> = { forwardMs: '#1f77b4', trainMs: '#d62728', tvSearchMs: '#2ca02c', patchSweepMs: '#9467bd' };
const LABELS: Record<Metric, string> = { forwardMs: 'forward', trainMs: 'train step', tvSearchMs: 'TV search', patchSweepMs: 'patch sweep' };
const TITLES: Record<Axis, string> = { dModel: 'd_model (4 layers, T 256)', layers: 'layers (d 128, T 256)', seq: 'sequence T (d 128, 4 layers; per prompt)' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function panel(curve: ScaleCurve, axis: Axis, x0: number): string {
  const pts = curve.points.filter((p) => p.axes.includes(axis)).sort((a, b) => a[axis] - b[axis]);
  const cost = (p: (typeof pts)[number], m: Metric) => {
    const v = p[m];
    if (v === null) return null;
    return axis === 'seq' && (m === 'forwardMs' || m === 'trainMs') ? v / p.batch : v;
  };
  const ys = pts.flatMap((p) => METRICS.map((m) => cost(p, m)).filter((v): v is number => v !== null && v > 0));
  const [ylo, yhi] = [Math.log10(Math.min(...ys)) - 0.1, Math.log10(Math.max(...ys)) + 0.1];
  const xs = AXES[axis] as readonly number[];
  const [xlo, xhi] = [Math.log10(xs[0]), Math.log10(xs[xs.length - 1])];
  const sx = (v: number) => x0 + PAD.l + ((Math.log10(v) - xlo) / (xhi - xlo)) * (W - PAD.l - PAD.r);
  const sy = (v: number) => PAD.t + (1 - (Math.log10(v) - ylo) / (yhi - ylo)) * (H - PAD.t - PAD.b);
  const parts: string[] = [`<text x="${x0 + W / 2}" y="14" text-anchor="middle" font-size="11">${esc(TITLES[axis])}</text>`];
  parts.push(`<rect x="${x0 + PAD.l}" y="${PAD.t}" width="${W - PAD.l - PAD.r}" height="${H - PAD.t - PAD.b}" fill="none" stroke="#999"/>`);
  for (const v of xs) parts.push(`<text x="${sx(v)}" y="${H - PAD.b + 13}" text-anchor="middle" font-size="9">${v}</text>`);
  for (let e = Math.ceil(ylo); e <= Math.floor(yhi); e++) {
    parts.push(`<line x1="${x0 + PAD.l}" x2="${x0 + W - PAD.r}" y1="${sy(10 ** e)}" y2="${sy(10 ** e)}" stroke="#eee"/>`);
    parts.push(`<text x="${x0 + PAD.l - 3}" y="${sy(10 ** e) + 3}" text-anchor="end" font-size="9">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)} ms</text>`);
  }
  METRICS.forEach((m, i) => {
    const line = pts.map((p) => [p[axis], cost(p, m)] as const).filter((q): q is readonly [number, number] => q[1] !== null);
    if (!line.length) return;
    parts.push(`<polyline fill="none" stroke="${COLORS[m]}" stroke-width="1.5" points="${line.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of line) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2" fill="${COLORS[m]}"/>`);
    const e = curve.exponents[axis][m];
    parts.push(`<text x="${x0 + PAD.l + 4}" y="${PAD.t + 11 + 10 * i}" font-size="9" fill="${COLORS[m]}">${LABELS[m]}: slope ${e.measured.toFixed(2)} (FLOPs ${e.arithmetic.toFixed(2)})</text>`);
  });
  return parts.join('\n');
}

export function scaleSvg(curve: ScaleCurve): string {
  const axes = Object.keys(AXES) as Axis[];
  const body = axes.map((a, i) => panel(curve, a, i * W)).join('\n');
  const note = `tvlens bench scale, commit ${curve.commit.slice(0, 12)}, ${curve.date.slice(0, 10)}; ${curve.tokensPerBatch} tokens per batch; log-log`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W * axes.length}" height="${H + 14}" font-family="sans-serif">\n${body}\n<text x="4" y="${H + 10}" font-size="9" fill="#555">${esc(note)}</text>\n</svg>\n`;
}
