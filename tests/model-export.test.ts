/**
 * An exported checkpoint computes the same function as an independent plain-TS transformer, for
 * each positional encoding and input kind; hooks obey their definitions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { inferenceGraph } from '../src/model/inference.js';
import { toOnnxBytes } from '../src/graph/index.js';
import { resolveModelConfig } from '../src/model/config.js';
import { type HostTensor, Session } from '../src/runtime/session.js';
import { Rng } from '../src/util/rng.js';
import { referenceForward } from './support/reference-transformer.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-export-'));

/** max |a − b| ÷ max(1, max |b|): a relative error that is not fooled by entries near zero. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0, scale = 1;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

const VARIANTS = [
  { name: 'learned positions, token input', cfg: { layers: 2, dModel: 16, heads: 2, vocab: 11, maxSeq: 12, positional: 'learned' } },
  { name: 'rotary positions, token input', cfg: { layers: 2, dModel: 16, heads: 4, vocab: 11, maxSeq: 12, positional: 'rotary', dMlp: 24 } },
  { name: 'attention-only blocks, rotary positions', cfg: { layers: 2, dModel: 16, heads: 4, vocab: 11, maxSeq: 12, positional: 'rotary', attnOnly: true } },
  { name: 'no positions, vector input and read-out', cfg: { layers: 3, dModel: 12, heads: 3, maxSeq: 12, positional: 'none', input: 'vectors', dIn: 3, output: 'vector', dOut: 2 } },
] as const;

describe('exported checkpoints', () => {
  for (const v of VARIANTS) {
    it(`match an independent plain-TS forward pass within 1e-5 relative (${v.name})`, async () => {
      // A large init scale makes attention patterns far from uniform, so mistakes show.
      const cfg = resolveModelConfig({ ...v.cfg, initStd: 0.3 });
      const params = new Map(inferenceGraph(cfg, 42).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
      const file = path.join(tmp(), 'ckpt');
      writeCheckpoint(file, cfg, params, { step: 0, seed: 42, task: null, metrics: {} });
      const loaded = loadCheckpoint(`${file}.onnx`);
      const session = await Session.open(new Uint8Array(fs.readFileSync(loaded.file)));

      const rng = new Rng(9);
      const B = 2, T = 7;
      const prompts = Array.from({ length: B }, () =>
        cfg.input === 'tokens'
          ? { tokens: Array.from({ length: T }, () => rng.int(cfg.vocab)) }
          : { inputs: Array.from({ length: T }, () => Array.from({ length: cfg.dIn }, () => rng.normal())), markers: Array.from({ length: T }, () => rng.int(3)) },
      );
      const feeds: Record<string, HostTensor> =
        cfg.input === 'tokens'
          ? { tokens: { dtype: 'int64' as const, shape: [B, T], data: BigInt64Array.from(prompts.flatMap((p) => (p as { tokens: number[] }).tokens), (t) => BigInt(t)) } }
          : {
              inputs: { dtype: 'float32' as const, shape: [B, T, cfg.dIn], data: Float32Array.from(prompts.flatMap((p) => (p as { inputs: number[][] }).inputs.flat())) },
              markers: { dtype: 'int64' as const, shape: [B, T], data: BigInt64Array.from(prompts.flatMap((p) => (p as { markers: number[] }).markers), (t) => BigInt(t)) },
            };
      const out = await session.run(feeds);
      const got = out[loaded.manifest.output].data as Float32Array;
      const want = prompts.flatMap((p) => referenceForward(cfg, loaded.params, p).output.flat());
      expect(got.length).toBe(want.length);
      expect(relErr(got, want)).toBeLessThan(1e-5);
    });
  }

  it('exposes hooks whose values obey their definitions (resid_post = resid_mid + mlp_out, resid_mid = resid_pre + attn_out)', async () => {
    const cfg = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, vocab: 11, maxSeq: 12, initStd: 0.3 });
    const { graph, hooks } = inferenceGraph(cfg, 3);
    for (const name of hooks) graph.output([...graph.nodes].find((n) => n.outputs[0].name === name)!.outputs[0]);
    const session = await Session.open(toOnnxBytes(graph));
    const tokens = BigInt64Array.from({ length: 10 }, (_, i) => BigInt(i % 11));
    const out = await session.run({ tokens: { dtype: 'int64', shape: [1, 10], data: tokens } });
    for (let l = 0; l < cfg.layers; l++) {
      const get = (h: string) => out[`blocks.${l}.${h}`].data as Float32Array;
      const sum = (a: Float32Array, b: Float32Array) => a.map((x, i) => x + b[i]);
      expect(relErr(get('hook_resid_post'), sum(get('hook_resid_mid'), get('hook_mlp_out')))).toBeLessThan(1e-6);
      expect(relErr(get('hook_resid_mid'), sum(get('hook_resid_pre'), get('hook_attn_out')))).toBeLessThan(1e-6);
      expect(out[`blocks.${l}.attn.hook_pattern`].shape).toEqual([1, 2, 10, 10]);
      expect(out[`blocks.${l}.attn.hook_z`].shape).toEqual([1, 10, 2, 8]);
      // Causal: no query attends to a later key.
      const pattern = out[`blocks.${l}.attn.hook_pattern`].data as Float32Array;
      for (let q = 0; q < 10; q++) for (let k = q + 1; k < 10; k++) expect(pattern[q * 10 + k]).toBe(0);
    }
    expect(relErr(out['blocks.1.hook_resid_pre'].data as Float32Array, out['blocks.0.hook_resid_post'].data as Float32Array)).toBe(0);
  });

  it('an attention-only model has no MLP or second LayerNorm, and its hook_mlp_out is zero', async () => {
    const cfg = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, vocab: 11, maxSeq: 12, attnOnly: true, initStd: 0.3 });
    const { graph, hooks } = inferenceGraph(cfg, 3);
    const names = graph.params.map((p) => p.value.name);
    expect(names.filter((n) => /\.(mlp|ln2)\./.test(n))).toEqual([]);
    expect(names).toContain('blocks.1.attn.W_Q');
    expect(() => resolveModelConfig({ attnOnly: true, dMlp: 32 })).toThrow(/no MLP: drop model.dMlp/); // it would be ignored
    expect(() => resolveModelConfig({ dMlp: -3 })).toThrow(/model.dMlp.*non-negative integer/);
    for (const name of hooks) graph.output([...graph.nodes].find((n) => n.outputs[0].name === name)!.outputs[0]);
    const session = await Session.open(toOnnxBytes(graph));
    const out = await session.run({ tokens: { dtype: 'int64', shape: [1, 6], data: BigInt64Array.from({ length: 6 }, (_, i) => BigInt(i)) } });
    for (let l = 0; l < cfg.layers; l++) {
      expect(Array.from(out[`blocks.${l}.hook_mlp_out`].data as Float32Array).every((v) => v === 0)).toBe(true);
      expect(out[`blocks.${l}.hook_resid_post`].data).toEqual(out[`blocks.${l}.hook_resid_mid`].data);
    }
  });
});
