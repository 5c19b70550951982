import { describe, expect, it } from 'vitest';
import { RangeInputError, type Variant } from '../src/backend/backend.js';
import { GraphBackend, mergeNearbyStarts } from '../src/backend/graph.js';
import { FeedArena } from '../src/backend/fast-path.js';
import { Graph } from '../src/graph/index.js';
import { type ModelConfig, resolveModelConfig } from '../src/model/config.js';
import { declareParams } from '../src/model/transformer.js';
import type { HostTensor } from '../src/runtime/session.js';
import { Rng } from '../src/util/rng.js';

function randomModel(over: Partial<ModelConfig> = {}, seed = 1) {
  const cfg = resolveModelConfig({ layers: 3, dModel: 16, heads: 2, vocab: 12, maxSeq: 24, initStd: 0.4, ...over });
  const g = new Graph('float32');
  declareParams(g, cfg, seed);
  const params = new Map(g.params.map((p) => [p.value.name, p.data as Float32Array]));
  return { cfg, params };
}

function prompts(cfg: ModelConfig, B: number, T: number, seed = 2): Record<string, HostTensor> {
  const rng = new Rng(seed);
  if (cfg.input === 'tokens') return { tokens: { dtype: 'int64', shape: [B, T], data: BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(cfg.vocab))) } };
  return {
    inputs: { dtype: 'float32', shape: [B, T, cfg.dIn], data: Float32Array.from({ length: B * T * cfg.dIn }, () => rng.normal()) },
    markers: { dtype: 'int64', shape: [B, T], data: BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(3))) },
  };
}

const randomVector = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal());

/** A mix of variants that exercises every entry kind, prefix lengths, heads and multi-site rewrites. */
function variants(cfg: ModelConfig, T: number, B: number): Variant[] {
  const rng = new Rng(7);
  const D = cfg.dModel;
  const dh = D / cfg.heads;
  const table = (width: number, count: number) => Array.from({ length: B * count }, () => randomVector(rng, width));
  const resid = (layer: number, positions: number[], mode: 'replace' | 'add' = 'replace') => {
    const values = table(D, positions.length);
    return { site: { kind: 'resid' as const, layer }, positions, mode, value: (n: number, i: number) => values[n * positions.length + i] };
  };
  const z = (layer: number, positions: number[], head?: number) => {
    const values = table(head === undefined ? D : dh, positions.length);
    return { site: { kind: 'z' as const, layer }, positions, head, mode: 'replace' as const, value: (n: number, i: number) => values[n * positions.length + i] };
  };
  const L = cfg.layers;
  return [
    [resid(0, [T - 1])],
    [resid(1, [T - 1], 'add')],
    [resid(L, [T - 1])],
    [resid(2, [3])],
    [resid(0, [0])],
    [resid(1, [2, 5])],
    [resid(0, [T - 1]), resid(2, [T - 1])],
    [resid(1, [T - 1], 'add'), resid(2, [T - 1], 'add'), resid(L, [T - 1], 'add')],
    [resid(1, [4]), resid(2, [T - 2])],
    [z(0, [T - 1], 1)],
    [z(1, [2], 0)],
    [z(2, [0, 1, 2, 3, 4, 5, 6, 7].filter((p) => p < T))],
    [z(1, [3], 1), resid(2, [4])],
    // One-row entries at one position.
    [resid(0, [5])],
    [resid(1, [5], 'add')],
    [resid(L - 1, [5])],
    [resid(L, [5])],
    [z(0, [5], 0)],
  ];
}

async function compare(over: Partial<ModelConfig>, B = 3, T = 9, rowsPerRun = 40) {
  const model = randomModel(over);
  const engine = GraphBackend.open(model, { rowsPerRun });
  const feeds = prompts(model.cfg, B, T);
  const base = await engine.base(feeds, { z: true });
  const vs = variants(model.cfg, T, B);
  const fast = await engine.patched(base, vs);
  const naive = await engine.patchedNaive(feeds, vs);
  const plain = await engine.forward(feeds);
  await engine.close();
  return { fast, naive, plain, base };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe("the patching engine", { timeout: 60000 }, () => {
  it('gives the same outputs through the suffix forward as one full forward pass per variant (learned positions)', async () => {
    const { fast, naive, plain, base } = await compare({});
    expect(maxDiff(base.out, plain)).toBe(0);
    fast.forEach((f, i) => expect(maxDiff(f, naive[i]), `variant ${i}`).toBeLessThan(2e-4));
    // The patches matter: a variant that changed nothing would make the comparison empty.
    expect(maxDiff(naive[0], plain)).toBeGreaterThan(1e-2);
  });

  it('gives the same outputs where groups that start close together run as one (a later start recomputes its unchanged rows)', async () => {
    // A start joins a run while it is at most (T − start)/4 after the run's start and the run fits in rowsPerRun.
    const T = 24;
    const groups = new Map([[5, [4]], [0, [0]], [2, [1]], [3, [2]], [4, [3]], [22, [5]], [23, [6]]]);
    expect(mergeNearbyStarts(groups, T, 3, 1000)).toEqual([[0, [0, 1, 2, 3]], [5, [4]], [22, [5]], [23, [6]]]);
    expect(mergeNearbyStarts(groups, T, 3, 3 * 24 * 2)).toEqual([[0, [0, 1]], [3, [2, 3]], [5, [4]], [22, [5]], [23, [6]]]);
    const { fast, naive } = await compare({}, 3, T, 1000);
    fast.forEach((f, i) => expect(maxDiff(f, naive[i]), `variant ${i}`).toBeLessThan(2e-4));
  });

  it("writes each run's feeds over the last run's buffer, and keeps a view handed out before the buffer grew", () => {
    const arena = new FeedArena();
    const a = arena.floats(4).fill(1);
    const b = arena.floats(8).fill(2); // outgrows the first buffer: a keeps its own
    expect([...a]).toEqual([1, 1, 1, 1]);
    expect(a.buffer).not.toBe(b.buffer);
    arena.reset();
    const c = arena.floats(8);
    expect(c.buffer).toBe(b.buffer);
    expect([...c]).toEqual(new Array(8).fill(2)); // not zeroed: every caller writes all of it
  });

  it('gives the same outputs with rotary positions and with vector inputs', async () => {
    for (const over of [{ positional: 'rotary' as const }, { attnOnly: true }, { input: 'vectors' as const, dIn: 3, output: 'vector' as const, dOut: 2, positional: 'none' as const }]) {
      const { fast, naive } = await compare(over);
      fast.forEach((f, i) => expect(maxDiff(f, naive[i]), `${JSON.stringify(over)} variant ${i}`).toBeLessThan(2e-4));
    }
  });

  it('rejects a layer out of range with the valid range', async () => {
    const model = randomModel();
    const engine = GraphBackend.open(model);
    const feeds = prompts(model.cfg, 2, 5);
    const base = await engine.base(feeds);
    const bad: Variant = [{ site: { kind: 'resid', layer: 4 }, positions: [4], mode: 'replace', value: () => new Float32Array(16) }];
    await expect(engine.patched(base, [bad])).rejects.toThrow(RangeInputError);
    await expect(engine.patched(base, [bad])).rejects.toThrow(/valid layers are 0\.\.3/);
    const badPos: Variant = [{ site: { kind: 'resid', layer: 1 }, positions: [5], mode: 'replace', value: () => new Float32Array(16) }];
    await expect(engine.patched(base, [badPos])).rejects.toThrow(/positions 0\.\.4/);
    await engine.close();
  });
});
