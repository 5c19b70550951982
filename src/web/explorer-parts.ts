/**
 * The explorer's pure parts, apart from the page: its result types, the typed prompt parsed into
 * demos and a query (symbols for token models, vectors for regression), the rows fed to a model,
 * a regression task's f(x) and scale, task labels and number display. Inlined into the report with
 * explorer.ts (report/web-script.ts); it imports nothing at run time.
 */
import type { ExplorerModel, TokenExplorer, VectorExplorer } from '../report/explorer.js';

declare global {
  interface Window {
    tvlensExplorer?: { state: string; last: ExplorerResult | VectorExplorerResult | null; error: string | null };
  }
}

export const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export type TokenModel = ExplorerModel & TokenExplorer;
export type VectorModel = ExplorerModel & VectorExplorer;

export interface Prediction {
  /** The argmax symbol at the last position. */
  token: number;
  /** The three most likely tokens with their softmax probabilities. */
  top: { token: number; p: number }[];
  /** The logits at the last position. */
  logits: number[];
}

export interface ExplorerResult {
  kind: 'tokens';
  model: number;
  task: number;
  layer: number;
  tokens: number[];
  zeroShotTokens: number[];
  injectPos: number;
  icl: Prediction;
  zeroShot: Prediction;
  injected: Prediction[];
  expected: number;
}

/** A regression model's prediction at the last position, and its squared error against f(x_q). */
export interface VectorPrediction {
  value: number;
  sqErr: number;
}

export interface VectorExplorerResult {
  kind: 'vectors';
  model: number;
  task: number;
  layer: number;
  /** What was fed: `inputs` [1, seq, dIn] flat (as float32 values) and `markers` [1, seq]. */
  inputs: number[];
  markers: number[];
  zeroShotInputs: number[];
  zeroShotMarkers: number[];
  injectPos: number;
  icl: VectorPrediction;
  zeroShot: VectorPrediction;
  injected: VectorPrediction[];
  /** f(x_q) of the chosen task. */
  truth: number;
  /** The task's mean y², that errors are shaded against. */
  scale: number;
}

/** "3→5, 7→9, 2→" into demos and a query; symbols must be 0..vocab−1. */
export function parsePrompt(text: string, m: TokenModel): { demos: [number, number][]; query: number } {
  const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new Error('type a prompt such as 3→5, 7→9, 2→');
  const sym = (s: string, where: string) => {
    if (!/^\d+$/.test(s)) throw new Error(`'${s}' in ${where} is not a symbol (0..${m.vocab - 1})`);
    const v = Number(s);
    if (v >= m.vocab) throw new Error(`symbol ${v} in ${where} is out of range 0..${m.vocab - 1}`);
    return v;
  };
  const pairs = parts.map((p) => p.split(/→|->|\s+/).map((s) => s.trim()).filter(Boolean));
  const last = pairs.pop()!;
  if (last.length !== 1) throw new Error(`the query '${parts[parts.length - 1]}' should be one symbol followed by →`);
  const demos = pairs.map((p, i) => {
    if (p.length !== 2) throw new Error(`demo ${i + 1} '${parts[i]}' should be x→y`);
    return [sym(p[0], `demo ${i + 1}`), sym(p[1], `demo ${i + 1}`)] as [number, number];
  });
  return { demos, query: sym(last[0], 'the query') };
}

export function tokensOf(m: TokenModel, demos: [number, number][], query: number): number[] {
  const t: number[] = [];
  for (const [x, y] of demos) t.push(...(m.format === 'triplet' ? [x, m.arrow, y, m.sep] : [x, y]));
  t.push(...(m.format === 'triplet' ? [query, m.arrow] : [query]));
  return t;
}

/** The demos and the query as the textarea shows them: `x₁, x₂, … → y` per line, `x_q →` last. */
export function vectorText(demos: readonly (readonly [readonly number[], number])[], query: readonly number[]): string {
  return [...demos.map(([x, y]) => `${x.join(', ')} → ${y}`), `${query.join(', ')} →`].join('\n');
}

/** The textarea into demos and a query; each x must have dIn finite numbers. */
export function parseVectors(text: string, m: VectorModel): { demos: [number[], number][]; query: number[] } {
  const lines = text.split(/\n|;/).map((s) => s.trim()).filter(Boolean);
  const n = `${m.dIn} number${m.dIn === 1 ? '' : 's'}`;
  if (lines.length === 0) throw new Error(`type one demo x → y per line and the query x_q → last, each x being ${n}`);
  const num = (s: string, where: string) => {
    const v = Number(s.replace(/−/g, '-'));
    if (s === '' || !Number.isFinite(v)) throw new Error(`'${s}' in ${where} is not a number`);
    return v;
  };
  const vec = (s: string, where: string) => {
    const parts = s.replace(/[[\]()]/g, ' ').split(/[\s,]+/).filter(Boolean);
    if (parts.length !== m.dIn) throw new Error(`x in ${where} has ${parts.length} number${parts.length === 1 ? '' : 's'}; this model takes ${n}`);
    return parts.map((p) => num(p, where));
  };
  const halves = lines.map((l) => l.split(/→|->/).map((s) => s.trim()));
  const last = halves.pop()!;
  if (last.length > 2 || (last.length === 2 && last[1] !== '')) throw new Error(`the query (last line) should be x_q followed by →, with no y`);
  const demos = halves.map((h, i) => {
    if (h.length !== 2 || h[1] === '') throw new Error(`demo ${i + 1} '${lines[i]}' should be x → y`);
    return [vec(h[0], `demo ${i + 1}`), num(h[1], `demo ${i + 1}`)] as [number[], number];
  });
  return { demos, query: vec(last[0], 'the query') };
}

/** Rows fed to the read-in: triplet `x → y , … x_q →`, pairwise `x y … x_q`; a y sits in coordinate 0. */
export function rowsOf(m: VectorModel, demos: [number[], number][], query: number[]): { inputs: Float32Array; markers: number[] } {
  const rows: { v: number[] | null; marker: number }[] = [];
  const data = (v: number[]) => rows.push({ v, marker: m.markers.data });
  const mark = (marker: number) => rows.push({ v: null, marker });
  for (const [x, y] of demos) {
    data(x);
    if (m.format === 'triplet') mark(m.markers.arrow);
    data([y]);
    if (m.format === 'triplet') mark(m.markers.sep);
  }
  data(query);
  if (m.format === 'triplet') mark(m.markers.arrow);
  const inputs = new Float32Array(rows.length * m.dIn);
  rows.forEach((r, i) => r.v && inputs.set(r.v, i * m.dIn));
  return { inputs, markers: rows.map((r) => r.marker) };
}

/** f(x) of task t. */
export function truthOf(m: VectorModel, t: number, x: readonly number[]): number {
  const task = m.tasks[t];
  if (task.family === 'linreg') return task.w.reduce((s, w, j) => s + w * x[j], 0);
  return task.a * Math.sin(task.b * x[0] + task.c);
}

/** The task's mean y² over its inputs: |w|² over the coordinates in use (x ~ N(0, I)), a²/2 for sine. */
export function scaleOf(m: VectorModel, t: number): number {
  const task = m.tasks[t];
  if (task.family === 'linreg') return task.w.slice(0, m.effectiveDim).reduce((s, w) => s + w * w, 0);
  return (task.a * task.a) / 2;
}


export const round = (v: number, digits: number) => Number(v.toFixed(digits));

/** A number for display: 3 significant decimals, or scientific when tiny or huge. */
export function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return String(round(v, 3));
}

/** A task as the task menu shows it: its name, and a regression task's function. */
export function taskLabel(m: ExplorerModel, i: number): string {
  if (m.kind === 'tokens') return m.tasks[i].name;
  const t = m.tasks[i];
  if (t.family === 'sine') return `${t.name}: ${fmt(t.a)}·sin(${fmt(t.b)}·x + ${fmt(t.c)})`;
  const shown = t.w.slice(0, 3).map(fmt).join(', ');
  return `${t.name}: w = [${shown}${t.w.length > 3 ? ', …' : ''}]`;
}
