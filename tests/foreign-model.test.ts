/**
 * A model tvlens did not make: a tiny 2-layer GPT written node by node with onnx-proto, the way
 * torch.onnx.export lays one out (node names like /blocks.0/Add_1, fused c_attn weights, erf GELU,
 * a causal mask sliced from a buffer), checked against a plain-TS computation of the same model.
 */
import { readModelFile } from '../src/backend/file-open.js';
import { promptFeeds } from '../src/backend/backend.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCache, selectHooks, writeCache } from '../src/analysis/cache.js';
import { readHookMap, residualCandidates, suggestHookMap } from '../src/backend/hookmap.js';
import { FileBackend } from '../src/backend/file.js';
import { hooksReport } from '../src/cli/hooks.js';
import { InputError } from '../src/errors.js';
import { type TokenBatch, resolveTaskConfig, sampleBatch } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';

const P = onnxProto.onnx;
const [V, D, H, L, CTX] = [18, 8, 2, 2, 16]; // vocab 16 + arrow + separator
const DH = D / H;
const TASK = resolveTaskConfig({ kind: 'discrete', vocab: 16, demos: { min: 2, max: 2 } });

// ---- the weights, as a PyTorch GPT names them (Conv1D layout: [in, out])
type Weights = Map<string, { dims: number[]; data: Float32Array }>;
function makeWeights(): Weights {
  const rng = new Rng(7);
  const w: Weights = new Map();
  const put = (name: string, dims: number[], f: (i: number) => number) => w.set(name, { dims, data: Float32Array.from({ length: dims.reduce((a, b) => a * b) }, (_, i) => f(i)) });
  const normal = (std: number) => () => rng.normal() * std;
  put('wte.weight', [V, D], normal(0.5));
  put('wpe.weight', [CTX, D], normal(0.3));
  for (let l = 0; l < L; l++) {
    const b = `blocks.${l}`;
    put(`${b}.ln_1.weight`, [D], () => 1 + rng.normal() * 0.1);
    put(`${b}.ln_1.bias`, [D], normal(0.1));
    put(`${b}.attn.c_attn.weight`, [D, 3 * D], normal(0.5));
    put(`${b}.attn.c_attn.bias`, [3 * D], normal(0.1));
    put(`${b}.attn.c_proj.weight`, [D, D], normal(0.3));
    put(`${b}.attn.c_proj.bias`, [D], normal(0.1));
    put(`${b}.attn.bias`, [1, 1, CTX, CTX], (i) => (i % CTX <= Math.floor(i / CTX) ? 1 : 0)); // tril buffer
    put(`${b}.ln_2.weight`, [D], () => 1 + rng.normal() * 0.1);
    put(`${b}.ln_2.bias`, [D], normal(0.1));
    put(`${b}.mlp.c_fc.weight`, [D, 4 * D], normal(0.3));
    put(`${b}.mlp.c_fc.bias`, [4 * D], normal(0.1));
    put(`${b}.mlp.c_proj.weight`, [4 * D, D], normal(0.2));
    put(`${b}.mlp.c_proj.bias`, [D], normal(0.1));
  }
  put('ln_f.weight', [D], () => 1);
  put('ln_f.bias', [D], () => 0);
  put('lm_head.weight', [D, V], normal(0.5));
  return w;
}

// ---- the graph, written as the exporter writes it
function exportLikeTorch(w: Weights): Uint8Array {
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const attr = (name: string, v: number | number[]): onnxProto.onnx.IAttributeProto =>
    Array.isArray(v) ? { name, type: P.AttributeProto.AttributeType.INTS, ints: v } : { name, type: P.AttributeProto.AttributeType.INT, i: v };
  const fattr = (name: string, f: number): onnxProto.onnx.IAttributeProto => ({ name, type: P.AttributeProto.AttributeType.FLOAT, f });
  /** Adds a node named like the exporter does; returns its outputs (`<name>_output_<i>`). */
  const node = (opType: string, name: string, input: string[], attribute: onnxProto.onnx.IAttributeProto[] = [], outputs = 1): string[] => {
    const output = Array.from({ length: outputs }, (_, i) => `${name}_output_${i}`);
    nodes.push({ opType, name, input, output, attribute });
    return output;
  };
  const constant = (name: string, t: onnxProto.onnx.ITensorProto) => node('Constant', name, [], [{ name: 'value', type: P.AttributeProto.AttributeType.TENSOR, t }])[0];
  const ints = (name: string, v: number[], scalar = false) => constant(name, { dataType: 7, dims: scalar ? [] : [v.length], int64Data: v });
  const float = (name: string, v: number) => constant(name, { dataType: 1, dims: [], floatData: [v] });

  const shape = node('Shape', '/Shape', ['input_ids'])[0];
  const seq = node('Gather', '/Gather', [shape, ints('/Constant', [1], true)], [attr('axis', 0)])[0];
  const range = node('Range', '/Range', [ints('/Constant_1', [0], true), seq, ints('/Constant_2', [1], true)])[0];
  const posIds = node('Unsqueeze', '/Unsqueeze', [range, ints('/Constant_3', [0])])[0];
  const tok = node('Gather', '/wte/Gather', ['wte.weight', 'input_ids'])[0];
  const pos = node('Gather', '/wpe/Gather', ['wpe.weight', posIds])[0];
  let x = node('Add', '/Add', [tok, pos])[0];
  const tt = node('Gather', '/Gather_1', [shape, ints('/Constant_4', [1, 1])], [attr('axis', 0)])[0]; // [T, T]
  const ln = (scope: string, input: string, prefix: string) =>
    node('LayerNormalization', `${scope}/LayerNormalization`, [input, `${prefix}.weight`, `${prefix}.bias`], [attr('axis', -1), fattr('epsilon', 1e-5)])[0];
  const linear = (scope: string, input: string, prefix: string) => node('Add', `${scope}/Add`, [`${prefix}.bias`, node('MatMul', `${scope}/MatMul`, [input, `${prefix}.weight`])[0]])[0];

  for (let l = 0; l < L; l++) {
    const b = `/blocks.${l}`;
    const h = ln(`${b}/ln_1`, x, `blocks.${l}.ln_1`);
    const qkv = linear(`${b}/attn/c_attn`, h, `blocks.${l}.attn.c_attn`);
    const [q0, k0, v0] = node('Split', `${b}/attn/Split`, [qkv, ints(`${b}/attn/Constant`, [D, D, D])], [attr('axis', 2)], 3);
    const heads = ints(`${b}/attn/Constant_1`, [0, 0, H, DH]);
    const q = node('Transpose', `${b}/attn/Transpose`, [node('Reshape', `${b}/attn/Reshape`, [q0, heads])[0]], [attr('perm', [0, 2, 1, 3])])[0];
    const kT = node('Transpose', `${b}/attn/Transpose_1`, [node('Reshape', `${b}/attn/Reshape_1`, [k0, heads])[0]], [attr('perm', [0, 2, 3, 1])])[0];
    const v = node('Transpose', `${b}/attn/Transpose_2`, [node('Reshape', `${b}/attn/Reshape_2`, [v0, heads])[0]], [attr('perm', [0, 2, 1, 3])])[0];
    const att = node('Div', `${b}/attn/Div`, [node('MatMul', `${b}/attn/MatMul`, [q, kT])[0], float(`${b}/attn/Constant_2`, Math.sqrt(DH))])[0];
    const tril = node('Slice', `${b}/attn/Slice`, [`blocks.${l}.attn.bias`, ints(`${b}/attn/Constant_3`, [0, 0]), tt, ints(`${b}/attn/Constant_4`, [2, 3])])[0];
    const future = node('Equal', `${b}/attn/Equal`, [tril, float(`${b}/attn/Constant_5`, 0)])[0];
    const masked = node('Where', `${b}/attn/Where`, [future, float(`${b}/attn/Constant_6`, -3.4028234663852886e38), att])[0];
    const pattern = node('Softmax', `${b}/attn/Softmax`, [masked], [attr('axis', -1)])[0];
    const z = node('Transpose', `${b}/attn/Transpose_3`, [node('MatMul', `${b}/attn/MatMul_1`, [pattern, v])[0]], [attr('perm', [0, 2, 1, 3])])[0];
    const merged = node('Reshape', `${b}/attn/Reshape_3`, [z, ints(`${b}/attn/Constant_7`, [0, 0, D])])[0];
    const attnOut = linear(`${b}/attn/c_proj`, merged, `blocks.${l}.attn.c_proj`);
    x = node('Add', `${b}/Add`, [x, attnOut])[0];
    const h2 = ln(`${b}/ln_2`, x, `blocks.${l}.ln_2`);
    const fc = linear(`${b}/mlp/c_fc`, h2, `blocks.${l}.mlp.c_fc`);
    const erf = node('Erf', `${b}/mlp/act/Erf`, [node('Div', `${b}/mlp/act/Div`, [fc, float(`${b}/mlp/act/Constant`, Math.SQRT2)])[0]])[0];
    const gelu = node('Mul', `${b}/mlp/act/Mul_1`, [node('Mul', `${b}/mlp/act/Mul`, [fc, node('Add', `${b}/mlp/act/Add`, [erf, float(`${b}/mlp/act/Constant_1`, 1)])[0]])[0], float(`${b}/mlp/act/Constant_2`, 0.5)])[0];
    const mlpOut = linear(`${b}/mlp/c_proj`, gelu, `blocks.${l}.mlp.c_proj`);
    x = node('Add', `${b}/Add_1`, [x, mlpOut])[0];
  }
  nodes.push({ opType: 'MatMul', name: '/lm_head/MatMul', input: [ln('/ln_f', x, 'ln_f'), 'lm_head.weight'], output: ['logits'] });

  const initializer = [...w].map(([name, t]) => ({ name, dims: t.dims, dataType: 1, rawData: new Uint8Array(t.data.buffer.slice(0)) }));
  const dims = (names: string[]) => ({ dim: names.map((dimParam) => ({ dimParam })) });
  const model = P.ModelProto.create({
    irVersion: 8,
    producerName: 'pytorch',
    producerVersion: '2.3.0',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'main_graph',
      node: nodes,
      initializer,
      input: [{ name: 'input_ids', type: { tensorType: { elemType: 7, shape: dims(['batch_size', 'sequence_length']) } } }],
      output: [{ name: 'logits', type: { tensorType: { elemType: 1, shape: dims(['batch_size', 'sequence_length', 'vocab']) } } }],
    },
  });
  return P.ModelProto.encode(model).finish();
}

// ---- the same model in plain TS, float64, one prompt at a time
type Vec = number[];
const erf = (x: number): number => {
  // Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: plenty at the tolerances below.
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
  return s * y;
};
function reference(w: Weights, tokens: number[], patch?: { layer: number; pos: number; value: Vec; mode: 'replace' | 'add' }) {
  const g = (n: string) => w.get(n)!.data;
  const lin = (x: Vec, W: string, bias: string | null, out: number) =>
    Array.from({ length: out }, (_, j) => x.reduce((s, v, k) => s + v * g(W)[k * out + j], bias ? g(bias)[j] : 0));
  const norm = (x: Vec, p: string) => {
    const m = x.reduce((a, b) => a + b) / x.length;
    const va = x.reduce((a, b) => a + (b - m) ** 2, 0) / x.length;
    return x.map((v, i) => ((v - m) / Math.sqrt(va + 1e-5)) * g(`${p}.weight`)[i] + g(`${p}.bias`)[i]);
  };
  let xs: Vec[] = tokens.map((t, i) => Array.from({ length: D }, (_, j) => g('wte.weight')[t * D + j] + g('wpe.weight')[i * D + j]));
  const resid: Vec[][] = [xs];
  for (let l = 0; l < L; l++) {
    const b = `blocks.${l}`;
    const qkv = xs.map((x) => lin(norm(x, `${b}.ln_1`), `${b}.attn.c_attn.weight`, `${b}.attn.c_attn.bias`, 3 * D));
    const attn = xs.map((_, t) => {
      const out = new Array(D).fill(0);
      for (let h = 0; h < H; h++) {
        const q = qkv[t].slice(h * DH, (h + 1) * DH);
        const scores = Array.from({ length: t + 1 }, (_, s) => q.reduce((a, v, i) => a + v * qkv[s][D + h * DH + i], 0) / Math.sqrt(DH));
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, c) => a + c);
        e.forEach((p, s) => { for (let i = 0; i < DH; i++) out[h * DH + i] += (p / z) * qkv[s][2 * D + h * DH + i]; });
      }
      return lin(out, `${b}.attn.c_proj.weight`, `${b}.attn.c_proj.bias`, D);
    });
    xs = xs.map((x, t) => x.map((v, i) => v + attn[t][i]));
    xs = xs.map((x) => {
      const f = lin(norm(x, `${b}.ln_2`), `${b}.mlp.c_fc.weight`, `${b}.mlp.c_fc.bias`, 4 * D).map((u) => 0.5 * u * (1 + erf(u / Math.SQRT2)));
      const m = lin(f, `${b}.mlp.c_proj.weight`, `${b}.mlp.c_proj.bias`, D);
      return x.map((v, i) => v + m[i]);
    });
    if (patch && patch.layer === l + 1) xs[patch.pos] = patch.mode === 'replace' ? patch.value.slice() : xs[patch.pos].map((v, i) => v + patch.value[i]);
    resid.push(xs);
  }
  const logits = xs.map((x) => lin(norm(x, 'ln_f'), 'lm_head.weight', null, V));
  return { resid, logits };
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

let dir: string;
let file: string;
let mapFile: string;
let weights: Weights;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-foreign-'));
  weights = makeWeights();
  file = path.join(dir, 'gpt.onnx');
  fs.writeFileSync(file, exportLikeTorch(weights));
  mapFile = path.join(dir, 'hooks.json');
});

describe('a foreign GPT exported like torch.onnx.export', () => {
  it('has its residual stream found: the embedding sum, then each block\'s two residual Adds, in order', async () => {
    const bytes = fs.readFileSync(file);
    const cands = residualCandidates(P.ModelProto.decode(bytes));
    expect(cands.map((c) => [c.node, c.tensor, c.suggested])).toEqual([
      ['/Add', '/Add_output_0', 'blocks.0.hook_resid_pre'],
      ['/blocks.0/Add', '/blocks.0/Add_output_0', 'blocks.0.hook_resid_mid'],
      ['/blocks.0/Add_1', '/blocks.0/Add_1_output_0', 'blocks.0.hook_resid_post'],
      ['/blocks.1/Add', '/blocks.1/Add_output_0', 'blocks.1.hook_resid_mid'],
      ['/blocks.1/Add_1', '/blocks.1/Add_1_output_0', 'blocks.1.hook_resid_post'],
    ]);
    const report = await hooksReport(file);
    expect(report.kind).toBe('foreign');
    // The suggestion holds the residual stream, and the branch outputs beside it (suggest-hooks.ts).
    expect(report.suggestedHookMap).toMatchObject(suggestHookMap(cands));
    expect(Object.values(report.suggestedHookMap!)).toContain('blocks.1.hook_mlp_out');
  });

  it('caches residuals that match an independent plain-TS computation of the model', async () => {
    fs.writeFileSync(mapFile, JSON.stringify({ hooks: suggestHookMap(residualCandidates(P.ModelProto.decode(fs.readFileSync(file)))), maxSeq: CTX }));
    const source = await FileBackend.open(file, { hookMap: mapFile });
    expect(source.facts.kind).toBe('foreign');
    expect(source.layers).toBe(L);
    expect(source.facts.tokenInput).toBe('input_ids');
    expect(source.facts.maxSeq).toBe(CTX);
    // resid_pre of block 1 is implied by block 0's resid_post
    expect(source.tensorOf('blocks.1.hook_resid_pre')).toBe('/blocks.0/Add_1_output_0');
    const hooks = selectHooks(source, ['resid']);
    expect(hooks).toEqual(['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']);
    const out = path.join(dir, 'cache.arrow');
    await writeCache(source, out, { task: TASK, prompts: 6, seed: 3, chunk: 4, hooks, positions: 'all' });
    await source.close();

    const cache = readCache(out, { expectModelHash: source.facts.modelHash });
    const batch = sampleBatch(TASK, new Rng(3), 6, { demos: 2 }) as TokenBatch;
    let worst = 0;
    for (let b = 0; b < 6; b++) {
      const tokens = Array.from(batch.tokens.subarray(b * batch.seq, (b + 1) * batch.seq), Number);
      const ref = reference(weights, tokens);
      for (let r = 0; r < cache.rows; r++) {
        if (cache.promptId[r] !== b) continue;
        const t = cache.position[r];
        hooks.forEach((h, i) => (worst = Math.max(worst, maxDiff(cache.hooks[h].data.subarray(r * D, (r + 1) * D), ref.resid[i][t]))));
      }
    }
    expect(cache.rows).toBe(6 * batch.seq);
    expect(worst).toBeLessThan(1e-4);
  });

  it('runs a patched forward pass whose downstream matches the reference with the same patch, in replace and add modes', async () => {
    const source = await FileBackend.open(file, { hookMap: { '/blocks.0/Add_1_output_0': 'blocks.0.hook_resid_post', '/Add_output_0': 'blocks.0.hook_resid_pre' } });
    const batch = sampleBatch(TASK, new Rng(5), 2, { demos: 2 }) as TokenBatch;
    const T = batch.seq;
    const q = batch.queryPos[0];
    const value = Array.from({ length: D }, (_, i) => Math.sin(i + 1));
    const mask = new Float32Array(T).map((_, t) => (t === q ? 1 : 0));
    const plain = (await source.run(promptFeeds(batch))).output.data as Float32Array;
    for (const mode of ['replace', 'add'] as const) {
      const res = await source.run(promptFeeds(batch), {
        patches: [{ hook: 'blocks.0.hook_resid_post', mode, value: { dtype: 'float32', shape: [D], data: Float32Array.from(value) }, mask: { dtype: 'float32', shape: [1, T, 1], data: mask } }],
      });
      const logits = res.output.data as Float32Array;
      for (let b = 0; b < 2; b++) {
        const ref = reference(weights, Array.from(batch.tokens.subarray(b * T, (b + 1) * T), Number), { layer: 1, pos: q, value, mode });
        expect(maxDiff(logits.subarray(b * T * V, (b + 1) * T * V), ref.logits.flat())).toBeLessThan(1e-4);
        // The patch changes the query's logits and nothing before it.
        expect(maxDiff(logits.subarray((b * T + q) * V, (b * T + q + 1) * V), plain.subarray((b * T + q) * V, (b * T + q + 1) * V))).toBeGreaterThan(0.05);
        expect(maxDiff(logits.subarray(b * T * V, (b * T + q) * V), plain.subarray(b * T * V, (b * T + q) * V))).toBe(0);
      }
    }
    await source.close();
  });
});

describe('foreign-model errors', () => {
  it('rejects a hook map naming a tensor not in the graph, suggesting the closest names', () => {
    const bad = path.join(dir, 'bad-map.json');
    fs.writeFileSync(bad, JSON.stringify({ '/blocks.0/Add_2_output_0': 'blocks.0.hook_resid_post' }));
    expect(() => readModelFile(file, bad)).toThrow(InputError);
    expect(() => readModelFile(file, bad)).toThrow(/tensor '\/blocks\.0\/Add_2_output_0'.*not in the graph\. Did you mean: .*\/blocks\.0\/Add_1_output_0/);
  });

  it('rejects a hook map whose target is not a hook name, listing the valid kinds', () => {
    const map = path.join(dir, 'bad-target.json');
    fs.writeFileSync(map, JSON.stringify({ '/Add_output_0': 'blocks.0.resid' }));
    expect(() => readHookMap(map)).toThrow(/'blocks\.0\.resid' is not a hook name\. Should be one of: .*hook_resid_post/);
  });

  it('rejects prompts longer than the context the hook map declares, with both numbers', async () => {
    const source = await FileBackend.open(file, { hookMap: { hooks: { '/Add_output_0': 'blocks.0.hook_resid_pre' }, maxSeq: 8 } });
    const batch = sampleBatch(TASK, new Rng(1), 1, { demos: 2 }); // 10 positions
    await expect(source.run(promptFeeds(batch))).rejects.toThrow(/prompts longer than the model's context: they have 10 positions, .* takes at most 8/);
    await source.close();
  });

  it('rejects a layer outside the mapped model, giving the valid range', async () => {
    const source = await FileBackend.open(file, { hookMap: mapFile });
    expect(() => source.residual(3)).toThrow(/layer 3 is out of range: this model has layers 0\.\.2/);
    expect(() => selectHooks(source, ['resid'], [2])).toThrow(/block 2 is out of range: this model's blocks are 0\.\.1/);
  });
});
