/** Malformed graphs and bad runtime options end in a clear, typed error. */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GraphError, RuntimeSetupError, ShapeError } from '../src/errors.js';
import { Graph, Value, knownOps, op, toOnnxBytes } from '../src/graph/index.js';
import { PROVIDERS, Session } from '../src/runtime/session.js';

describe('graph errors', () => {
  it('a matmul of mismatched shapes throws a ShapeError quoting both shapes and the node name', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [4, 5]);
    let error: unknown;
    try {
      g.scope('blocks.0.attn', () => op.matmul(a, b));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ShapeError);
    const message = (error as Error).message;
    expect(message).toContain('[2, 3]');
    expect(message).toContain('[4, 5]');
    expect(message).toMatch(/blocks\.0\.attn\/MatMul_\d+/);
    expect((error as ShapeError).node).toMatch(/MatMul/);
  });

  it('an add of shapes that do not broadcast throws a ShapeError quoting both shapes', () => {
    const g = new Graph();
    const a = g.input('a', 'float32', [2, 3]);
    const b = g.input('b', 'float32', [4]);
    expect(() => op.add(a, b)).toThrow(ShapeError);
    expect(() => op.add(a, b)).toThrow(/Add_\d+: cannot broadcast \[2, 3\] with \[4\]/);
  });

  it('a reshape infers through a product of symbolic sizes, and still refuses one that cannot fit', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', ['n', 2, 's', 4, 8]);
    const merged = op.reshape(x, [0, -1, 4, 8]); // [n, 2*s, 4, 8]
    expect(merged.shape).toEqual(['n', '2*s', 4, 8]);
    expect(op.reshape(merged, [0, 2, -1, 4, 8]).shape).toEqual(['n', 2, 's', 4, 8]);
    expect(op.reshape(merged, [0, -1, 32]).shape).toEqual(['n', '2*s', 32]);
    expect(() => op.reshape(merged, [0, 3, -1, 4, 8])).toThrow(/cannot reshape \[n, 2\*s, 4, 8\]/);
  });

  it('the writer refuses a node whose input no earlier node produces, naming the node', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    const ghost = new Value(g, 'ghost', 'float32', [2], null); // never declared as input, initializer or output
    g.output(op.add(x, ghost), 'y');
    expect(() => toOnnxBytes(g)).toThrow(GraphError);
    expect(() => toOnnxBytes(g)).toThrow(/Add_\d+: input 'ghost' is not produced by any earlier node/);
  });

  it('the writer refuses nodes that run out of order', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    const h = op.relu(x);
    g.output(op.neg(h), 'y');
    [g.nodes[0], g.nodes[1]] = [g.nodes[1], g.nodes[0]]; // Neg now comes before the Relu that feeds it
    expect(() => toOnnxBytes(g)).toThrow(/Neg_\d+: input 'Relu_out_\d+' is not produced by any earlier node/);
  });

  it('a value from another graph is refused where it is used', () => {
    const g1 = new Graph();
    const g2 = new Graph();
    const a = g1.input('a', 'float32', [2]);
    const b = g2.input('b', 'float32', [2]);
    expect(() => op.add(a, b)).toThrow(GraphError);
    expect(() => op.add(a, b)).toThrow(/input b belongs to another graph/);
  });

  it('the writer refuses two nodes with the same name', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    const a = g.apply('Relu', [x], {}, { nodeName: 'twin' })[0];
    const b = g.apply('Neg', [a], {}, { nodeName: 'twin' })[0];
    g.output(b, 'y');
    expect(() => toOnnxBytes(g)).toThrow(GraphError);
    expect(() => toOnnxBytes(g)).toThrow(/twin: duplicate node name/);
  });

  it('a tensor name used twice is refused', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    expect(() => g.input('x', 'float32', [3])).toThrow(/duplicate tensor name 'x'/);
    expect(() => g.apply('Relu', [x], {}, { outputNames: ['x'] })).toThrow(GraphError);
  });

  it('an unknown op name throws an error listing the known ops', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    expect(() => g.apply('Frobnicate', [x])).toThrow(GraphError);
    expect(() => g.apply('Frobnicate', [x])).toThrow(/unknown op 'Frobnicate'\. Should be one of: .*MatMul/);
    expect(knownOps()).toContain('MatMul');
  });
});

describe('runtime errors', () => {
  it('an unknown execution provider is rejected with a RuntimeSetupError listing the valid ones', async () => {
    const g = new Graph();
    g.output(op.relu(g.input('x', 'float32', [2])), 'y');
    const opening = Session.open(toOnnxBytes(g), { provider: 'tpu' as never });
    await expect(opening).rejects.toThrow(RuntimeSetupError);
    await expect(Session.open(toOnnxBytes(g), { provider: 'tpu' as never })).rejects.toThrow(
      new RegExp(`unknown execution provider 'tpu'\\. Should be one of: ${PROVIDERS.join(', ')}`),
    );
  });

  it('the cuda provider runs the model where its binaries are installed, and otherwise fails with one line naming the install flag', async () => {
    const g = new Graph('float32');
    g.output(op.neg(g.input('x', 'float32', [2])), 'y');
    // onnxruntime-node ships its CUDA provider only when installed with ONNXRUNTIME_NODE_INSTALL=cuda12.
    const bin = path.join(path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin');
    const installed = fs.readdirSync(bin, { recursive: true }).some((f) => String(f).includes('providers_cuda'));
    const opened = Session.open(toOnnxBytes(g), { provider: 'cuda' });
    if (!installed) {
      const e = await opened.then(() => null, (err: Error) => err);
      expect(e).toBeInstanceOf(RuntimeSetupError);
      expect(e!.message).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
      expect(e!.message).not.toContain('\n');
      return;
    }
    const session = await opened;
    const { y } = await session.run({ x: { dtype: 'float32', shape: [2], data: Float32Array.of(1, -2) } });
    expect(Array.from(y.data as Float32Array)).toEqual([-1, 2]);
    await session.release();
  });
});
