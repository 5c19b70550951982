/**
 * A plain-TypeScript transformer over number arrays, written from the math and not from the graph
 * builder, to check exported checkpoints against an independent computation. Float64 throughout.
 */
import type { ModelConfig } from '../../src/model/config.js';

type P = ReadonlyMap<string, Float32Array>;
type Mat = number[][]; // [rows][cols]

const matmul = (x: Mat, w: Float32Array, cols: number, bias?: Float32Array): Mat =>
  x.map((row) => {
    const out = new Array(cols).fill(0);
    row.forEach((v, k) => {
      for (let j = 0; j < cols; j++) out[j] += v * w[k * cols + j];
    });
    return bias ? out.map((o, j) => o + bias[j]) : out;
  });

const layerNorm = (x: Mat, gain: Float32Array, bias: Float32Array, eps: number): Mat =>
  x.map((row) => {
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length;
    return row.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * gain[i] + bias[i]);
  });

const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

function rotary(x: number[], pos: number): number[] {
  const half = x.length / 2;
  const out = x.slice();
  for (let i = 0; i < half; i++) {
    const theta = pos * 10000 ** (-(2 * i) / x.length);
    out[i] = x[i] * Math.cos(theta) - x[i + half] * Math.sin(theta);
    out[i + half] = x[i + half] * Math.cos(theta) + x[i] * Math.sin(theta);
  }
  return out;
}

export interface ReferenceOutput {
  output: Mat; // [pos][vocab | dOut]
  residPost: Mat[]; // per layer, [pos][d_model]
}

/** One prompt: token ids, or per-position vectors with marker ids. */
export function referenceForward(cfg: ModelConfig, p: P, prompt: { tokens: number[] } | { inputs: number[][]; markers: number[] }): ReferenceOutput {
  const D = cfg.dModel;
  const H = cfg.heads;
  const dh = D / H;
  const dMlp = cfg.dMlp || 4 * D;
  const row = (m: Float32Array, i: number) => Array.from(m.subarray(i * D, (i + 1) * D));
  let x: Mat =
    'tokens' in prompt
      ? prompt.tokens.map((t) => row(p.get('embed.W_E')!, t))
      : prompt.inputs.map((v, i) => matmul([v], p.get('embed.W_in')!, D)[0].map((a, j) => a + row(p.get('embed.W_marker')!, prompt.markers[i])[j]));
  const T = x.length;
  if (cfg.positional === 'learned') x = x.map((r, t) => r.map((v, j) => v + p.get('pos_embed.W_pos')![t * D + j]));
  const residPost: Mat[] = [];
  for (let l = 0; l < cfg.layers; l++) {
    const b = (n: string) => p.get(`blocks.${l}.${n}`)!;
    const h = layerNorm(x, b('ln1.w'), b('ln1.b'), cfg.lnEpsilon);
    const [q, k, v] = ['Q', 'K', 'V'].map((m) => matmul(h, b(`attn.W_${m}`), D, b(`attn.b_${m}`)));
    const z: Mat = Array.from({ length: T }, () => new Array(D).fill(0));
    for (let head = 0; head < H; head++) {
      const slice = (r: number[], t: number) => {
        const s = r.slice(head * dh, (head + 1) * dh);
        return cfg.positional === 'rotary' ? rotary(s, t) : s;
      };
      for (let t = 0; t < T; t++) {
        const qt = slice(q[t], t);
        const scores = Array.from({ length: t + 1 }, (_, s) => slice(k[s], s).reduce((a, kv, i) => a + kv * qt[i], 0) / Math.sqrt(dh));
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const total = e.reduce((a, c) => a + c, 0);
        for (let s = 0; s <= t; s++) for (let i = 0; i < dh; i++) z[t][head * dh + i] += (e[s] / total) * v[s][head * dh + i];
      }
    }
    const attnOut = matmul(z, b('attn.W_O'), D, b('attn.b_O'));
    x = x.map((r, t) => r.map((val, j) => val + attnOut[t][j]));
    if (!cfg.attnOnly) {
      const h2 = layerNorm(x, b('ln2.w'), b('ln2.b'), cfg.lnEpsilon);
      const hidden = matmul(h2, b('mlp.W_in'), dMlp, b('mlp.b_in')).map((r) => r.map(gelu));
      const mlpOut = matmul(hidden, b('mlp.W_out'), D, b('mlp.b_out'));
      x = x.map((r, t) => r.map((val, j) => val + mlpOut[t][j]));
    }
    residPost.push(x);
  }
  const out = cfg.output === 'logits' ? cfg.vocab : cfg.dOut;
  const output = matmul(layerNorm(x, p.get('ln_final.w')!, p.get('ln_final.b')!, cfg.lnEpsilon), p.get('unembed.W_U')!, out, p.get('unembed.b_U')!);
  return { output, residPost };
}
