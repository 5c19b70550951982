import type { Attrs, Shape, Value } from '../ir.js';

/**
 * Adds a single-output node to the graph of its first input. `shapeHint` replaces the inferred
 * shape when the builder knows more than inference can (a Reshape to a runtime shape tensor).
 */
export function apply1(op: string, inputs: readonly Value[], attrs: Attrs = {}, shapeHint?: Shape): Value {
  return inputs[0].graph.apply(op, inputs, attrs, { shapeHint })[0];
}
