/**
 * The one table of ops: "which ops can we build, and which can we differentiate?" is a lookup here.
 * Each op registers its shape inference and its gradient rule together (see ops/*.ts).
 */
import { GradientError, GraphError } from '../errors.js';
import type { Attrs, DType, Node, Shape, Value } from './ir.js';

export interface OutputType {
  readonly dtype: DType;
  readonly shape: Shape;
}

/**
 * A vector-Jacobian product: the gradient of the loss with respect to the node's first output in,
 * one gradient per input out (null where none flows, e.g. integer indices).
 */
export type GradRule = (gy: Value, node: Node) => readonly (Value | null)[];

export interface OpDef {
  readonly infer: (inputs: readonly Value[], attrs: Attrs, node: string) => readonly OutputType[];
  /** Absent for ops that no gradient may pass through. */
  readonly grad?: GradRule;
  /** Attributes that ONNX types as FLOAT; other numbers are INT. */
  readonly floatAttrs?: readonly string[];
}

const table = new Map<string, OpDef>();

export function defineOp(op: string, def: OpDef): void {
  if (table.has(op)) throw new GraphError(`op ${op} is defined twice`);
  table.set(op, def);
}

export function opDef(op: string, node?: string): OpDef {
  const def = table.get(op);
  if (!def) throw new GraphError(`unknown op '${op}'. Should be one of: ${[...table.keys()].sort().join(', ')}`, node);
  return def;
}

export function gradRule(node: Node): GradRule {
  const rule = opDef(node.op, node.name).grad;
  if (!rule) throw new GradientError(`${node.name}: no gradient rule for op '${node.op}'. Differentiable ops: ${differentiableOps().join(', ')}`);
  return rule;
}

export function differentiableOps(): string[] {
  return [...table].filter(([, d]) => d.grad).map(([op]) => op).sort();
}

export function knownOps(): string[] {
  return [...table.keys()].sort();
}
