/** Build-time shape arithmetic. Symbolic dimensions are names; two equal names are equal sizes. */
import { ShapeError } from '../errors.js';
import type { Dim, Shape } from './ir.js';

export const fmt = (s: Shape): string => `[${s.join(', ')}]`;

export function normAxis(axis: number, rank: number, node: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new ShapeError(`axis ${axis} is out of range for rank ${rank}`, node);
  return a;
}

function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

/** NumPy broadcasting. Throws with both shapes when they do not fit. */
export function broadcast(a: Shape, b: Shape, node: string): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
    if (sameDim(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else if (typeof da === 'string' || typeof db === 'string') out.push(typeof da === 'number' ? da : db);
    else throw new ShapeError(`cannot broadcast ${fmt(a)} with ${fmt(b)}`, node);
  }
  return out;
}

export function broadcastAll(shapes: readonly Shape[], node: string): Dim[] {
  return shapes.reduce<Dim[]>((acc, s) => broadcast(acc, s, node), []);
}

export function checkSameDim(a: Dim, b: Dim, what: string, node: string): void {
  if (typeof a === 'number' && typeof b === 'number' && a !== b) throw new ShapeError(what, node);
}

/** Number of elements as [known product, symbolic factors]. */
function factor(s: Shape): [number, string[]] {
  let n = 1;
  const sym: string[] = [];
  for (const d of s) {
    if (typeof d === 'number') n *= d;
    // A product name that reshape made ("2*s", "batch*seq") factors into its parts.
    else for (const part of d.split('*')) /^\d+$/.test(part) ? (n *= Number(part)) : sym.push(part);
  }
  return [n, sym];
}

/**
 * ONNX Reshape inference: 0 copies the input dimension, -1 takes what is left. With symbolic
 * dimensions the -1 becomes a product name such as "batch*seq".
 */
export function reshapeShape(input: Shape, target: readonly number[], node: string): Dim[] {
  const out: Dim[] = target.map((d, i) => (d === 0 ? input[i] : d));
  const free = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) throw new ShapeError(`reshape target ${fmt(target)} has more than one -1`, node);
  const [inN, inSym] = factor(input);
  const known = out.filter((d, i) => i !== free);
  const [outN, outSym] = factor(known);
  const rest = inSym.slice();
  for (const s of outSym) {
    const k = rest.indexOf(s);
    if (k >= 0) rest.splice(k, 1);
    else if (free < 0) return out; // cannot check a symbolic size against a number
  }
  if (free >= 0) {
    if (inN % outN !== 0) throw new ShapeError(`cannot reshape ${fmt(input)} to ${fmt(target)}`, node);
    const n = inN / outN;
    out[free] = rest.length === 0 ? n : n === 1 ? rest.join('*') : [n, ...rest].join('*');
  } else if (rest.length === 0 && outSym.length === inSym.length && inN !== outN) {
    throw new ShapeError(`cannot reshape ${fmt(input)} (${inN} elements) to ${fmt(target)} (${outN} elements)`, node);
  }
  return out;
}

export function size(s: Shape): number | null {
  const [n, sym] = factor(s);
  return sym.length ? null : n;
}

export function isStatic(s: Shape): s is readonly number[] {
  return s.every((d) => typeof d === 'number');
}
