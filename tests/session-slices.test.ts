import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RuntimeSetupError } from '../src/errors.js';
import { Graph, op, toOnnxBytes } from '../src/graph/index.js';
import { Session } from '../src/runtime/session.js';

/** y[b, i] = x[b, i] · scale + b-th row's own sum, and n[b] = an int64 copy of a per-row count. */
async function rowModel(): Promise<Session> {
  const g = new Graph('float32');
  const x = g.input('x', 'float32', ['batch', 3]);
  const scale = g.input('scale', 'float32', [1]);
  const count = g.input('count', 'int64', ['batch']);
  g.output(op.add(op.mul(x, scale), op.reduceSum(x, [1], true)), 'y');
  g.output(op.add(count, count), 'n');
  return Session.open(toOnnxBytes(g));
}

describe('Session.runSliced', () => {
  const B = 5000;
  const x = Float32Array.from({ length: B * 3 }, (_, i) => Math.sin(i));
  const feeds = {
    x: { dtype: 'float32' as const, shape: [B, 3], data: x },
    scale: { dtype: 'float32' as const, shape: [1], data: Float32Array.of(2) },
    count: { dtype: 'int64' as const, shape: [B], data: BigInt64Array.from({ length: B }, (_, i) => BigInt(i)) },
  };

  it('gives exactly what one run gives, in many slices, with a feed that does not lead with the batch going whole', async () => {
    const s = await rowModel();
    const whole = await s.run(feeds, ['y', 'n']);
    // A target of 0 ms makes every slice after the first one row long: thousands of runs.
    const sliced = await s.runSliced(feeds, ['y', 'n'], { targetMs: 0 });
    await s.release();
    expect(sliced.y.shape).toEqual([B, 3]);
    expect(sliced.n.shape).toEqual([B]);
    expect(sliced.y.data).toEqual(whole.y.data);
    expect(sliced.n.data).toEqual(whole.n.data);
  });

  it('runs a batch that fits one slice as one run', async () => {
    const s = await rowModel();
    const small = { ...feeds, x: { ...feeds.x, shape: [2, 3], data: x.subarray(0, 6) }, count: { ...feeds.count, shape: [2], data: feeds.count.data.subarray(0, 2) } };
    const [sliced, whole] = [await s.runSliced(small, ['y']), await s.run(small, ['y'])];
    await s.release();
    expect(sliced.y.data).toEqual(whole.y.data);
  });
});

describe('TVLENS_ORT_PROFILE', () => {
  it("writes ONNX Runtime's profile of a session when it closes, and refuses a missing folder in one line", async () => {
    const saved = process.env.TVLENS_ORT_PROFILE;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-profile-'));
    try {
      process.env.TVLENS_ORT_PROFILE = path.join(dir, 'missing', 'p');
      await expect(rowModel()).rejects.toThrow(RuntimeSetupError);
      await expect(rowModel()).rejects.toThrow(/^TVLENS_ORT_PROFILE=.*: the folder .*missing does not exist$/);
      process.env.TVLENS_ORT_PROFILE = path.join(dir, 'p');
      const s = await rowModel();
      const one = { dtype: 'float32' as const, shape: [1, 3], data: Float32Array.of(1, 2, 3) };
      await s.run({ x: one, scale: { dtype: 'float32', shape: [1], data: Float32Array.of(2) }, count: { dtype: 'int64', shape: [1], data: BigInt64Array.of(1n) } });
      await s.release();
      const files = fs.readdirSync(dir).filter((f) => f.startsWith('p_') && f.endsWith('.json'));
      expect(files).toHaveLength(1);
      const events = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8')) as { cat?: string; name: string }[];
      expect(events.some((e) => e.cat === 'Session' && e.name === 'model_run')).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.TVLENS_ORT_PROFILE;
      else process.env.TVLENS_ORT_PROFILE = saved;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
