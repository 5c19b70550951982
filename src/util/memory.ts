/**
 * Memory estimates made before anything is allocated, so that an oversized model, batch or prompt
 * set is refused with one line (the estimate and the limit) instead of a V8 out-of-memory crash
 * or minutes of silence. The estimates are deliberately rough (within a small factor, erring
 * high); the limit is the machine's available memory unless `--max-memory` says otherwise.
 */
import os from 'node:os';
import { ConfigError } from '../errors.js';

/** The largest model tvlens trains: graph building and autodiff in JS take minutes beyond this. */
export const MAX_TRAINED_PARAMETERS = 100e6;

/** A float32 takes 4 bytes. */
const F32 = 4;

/** "8G", "512MiB", "1.5GB", "2e9" → bytes. */
export function parseBytes(text: string, flag = '--max-memory'): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) throw new ConfigError(`expected a size such as 8G, 512M or 2e9 (bytes), got '${text}'`, flag);
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const n = Number(m[1]) * unit;
  if (!Number.isFinite(n)) throw new ConfigError(`expected a size such as 8G, got '${text}', which is too large`, flag);
  if (n < 1) throw new ConfigError(`'${text}' is less than one byte; give a size such as 8G or 512M`, flag);
  return n;
}

export const formatBytes = (n: number): string =>
  n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(0)} MiB` : n >= 2 ** 10 ? `${Math.ceil(n / 2 ** 10)} KiB` : `${Math.round(n)} bytes`;

/** The default limit: the memory the OS reports available now, or the container's limit where that is lower. */
export function availableMemory(): number {
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return limit && limit > 0 ? Math.min(os.freemem(), limit) : os.freemem();
}

export interface MemoryEstimate {
  readonly total: number;
  /** Named parts, for the message. */
  readonly parts: Readonly<Record<string, number>>;
}

/** What the model shapes the estimates need. */
export interface ModelShape {
  readonly layers: number;
  readonly dModel: number;
  readonly heads: number;
  readonly dMlp: number;
  readonly vocab: number;
  readonly maxSeq: number;
}

export function parameterCount(m: ModelShape): number {
  const d = m.dModel;
  // Attention (4 d² + 4 d biases), two LayerNorms (4 d), the MLP (2 d·d_mlp + d_mlp + d); an
  // attention-only block (d_mlp 0) is over-counted by its missing LayerNorm and bias (3 d).
  const block = 4 * d * d + 2 * d * m.dMlp + 9 * d + m.dMlp;
  return m.layers * block + 2 * m.vocab * d + m.maxSeq * d + 2 * d;
}

/** Activations one forward pass keeps for the backward pass, per prompt position. */
function activationsPerPosition(m: ModelShape, seq: number): number {
  return m.layers * (16 * m.dModel + 3 * m.dMlp + 3 * m.heads * seq) + 3 * m.vocab;
}

/**
 * A training step: weights, gradients and AdamW moments (each held once by ONNX Runtime and once
 * by tvlens), and the activations of `passes` forward passes (2 for TVP-loss) of `batch` × `seq`.
 */
export function trainingMemory(m: ModelShape, batch: number, seq: number, passes = 1): MemoryEstimate {
  const count = parameterCount(m);
  if (count > MAX_TRAINED_PARAMETERS) {
    throw new ConfigError(
      `the model has ${(count / 1e6).toFixed(1)}M parameters; tvlens builds and trains its graphs in JavaScript for models up to ${MAX_TRAINED_PARAMETERS / 1e6}M (a larger one builds for minutes and steps for longer): lower model.dModel or model.layers`,
      'model',
    );
  }
  const params = count * F32 * 8;
  const activations = batch * seq * activationsPerPosition(m, seq) * F32 * 2 * passes;
  const data = batch * seq * 8 * 4 * passes;
  return { total: params + activations + data, parts: { 'weights and optimizer state': params, activations, batch: data } };
}

/** An analysis that holds the residual stream at every layer of `prompts` prompts of `seq` positions, run in chunks of `chunk`. */
export function analysisMemory(m: ModelShape, prompts: number, seq: number, chunk = 256): MemoryEstimate {
  const params = parameterCount(m) * F32 * 2;
  const kept = prompts * (m.layers + 1) * m.dModel * F32 * 2 + prompts * seq * 8 * 2;
  const pass = Math.min(prompts, chunk) * seq * (activationsPerPosition(m, seq) + m.layers * 2 * m.dModel) * F32;
  return { total: params + kept + pass, parts: { weights: params, 'kept residuals and prompts': kept, 'one forward pass': pass } };
}

/**
 * An analysis that keeps whole runs (activation patching, function vectors, attribution): `runs`
 * runs of `prompts` × `seq` positions, each keeping the residual stream at every layer and
 * `perBlock` more d_model-wide tensors per block (q, k, v, z, gradients), plus one pass.
 */
export function fullRunMemory(m: ModelShape, prompts: number, seq: number, perBlock: number, runs: number): MemoryEstimate {
  const params = parameterCount(m) * F32 * 2;
  const kept = runs * prompts * seq * (m.layers + 1 + perBlock * m.layers) * m.dModel * F32;
  const pass = Math.min(prompts, 256) * seq * activationsPerPosition(m, seq) * F32;
  return { total: params + kept + pass, parts: { weights: params, 'kept runs': kept, 'one forward pass': pass } };
}

/**
 * Refuses with one line when `est` is over `limit` (bytes; default: the available memory).
 * `what` names the job, `hint` says what to make smaller.
 */
export function checkMemory(est: MemoryEstimate, what: string, hint: string, limit?: number): void {
  const max = limit ?? availableMemory();
  if (est.total <= max) return;
  const parts = Object.entries(est.parts)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${formatBytes(v)}`)
    .join(', ');
  const source = limit === undefined ? 'the memory available now' : '--max-memory';
  throw new ConfigError(`${what} needs about ${formatBytes(est.total)} (${parts}), more than ${formatBytes(max)} (${source}); ${hint}, or raise the limit with --max-memory`);
}
