/**
 * The worker-thread session the training steps run on: the same outputs as a session on this
 * thread, lent feeds moved rather than copied, and bad input in one line, the session usable after.
 */
import { describe, expect, it } from 'vitest';
import { Graph, op, toOnnxBytes } from '../src/graph/index.js';
import { Session } from '../src/runtime/session.js';
import { WorkerSession } from '../src/runtime/worker-session.js';

function model(): Uint8Array {
  const g = new Graph('float32');
  const x = g.input('x', 'float32', ['batch', 3]);
  const count = g.input('count', 'int64', ['batch']);
  g.output(op.add(op.mul(x, x), op.reduceSum(x, [1], true)), 'y');
  g.output(op.add(count, count), 'n');
  return toOnnxBytes(g);
}

const feeds = () => ({
  x: { dtype: 'float32' as const, shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)) },
  count: { dtype: 'int64' as const, shape: [4], data: BigInt64Array.of(1n, 2n, 3n, 4n) },
});

describe('WorkerSession', () => {
  it('gives what a session on this thread gives, and moves lent feeds instead of copying them', async () => {
    const [here, there] = [await Session.open(model()), await WorkerSession.open(model())];
    try {
      const want = await here.run(feeds());
      const lent = feeds();
      const got = await there.run(lent, undefined, { lend: ['x'] });
      expect(got.y.data).toEqual(want.y.data);
      expect(got.n.data).toEqual(want.n.data);
      expect(lent.x.data.length).toBe(0); // moved to the worker: detached here
      expect(lent.count.data.length).toBe(4); // not lent: copied
      expect([...there.inputNames].sort()).toEqual(['count', 'x']);
    } finally {
      await here.release();
      await there.release();
    }
  });

  it('refuses a file that is not a model in one line', async () => {
    await expect(WorkerSession.open(new TextEncoder().encode('not an onnx model'))).rejects.toThrow(/^ONNX Runtime refused the model: [^\n]+$/);
  });

  it('reports a failed run in one line and keeps working', async () => {
    const s = await WorkerSession.open(model());
    try {
      const bad = { x: feeds().x }; // no 'count'
      await expect(s.run(bad)).rejects.toThrow(/^ONNX Runtime failed to run the model: [^\n]+$/);
      const ok = await s.run(feeds());
      expect(ok.y.shape).toEqual([4, 3]);
    } finally {
      await s.release();
    }
  });
});
