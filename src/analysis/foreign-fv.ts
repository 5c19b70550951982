/**
 * Function vectors (Todd et al.) on a foreign model with text tasks, through its suggested hooks:
 *
 *   1. z̄[t][ℓ][h]: each head's attn.hook_z at the last position, averaged over a task's clean k-shot prompts;
 *   2. AIE per head: on shuffled-label prompts, write z̄ of one head at the last position and take the
 *      rise in P(first answer token), averaged over prompts and then tasks;
 *   3. FV[t] = Σ over the top-k heads of z̄[t][ℓ][h] · W_O^ℓ[h·dh:(h+1)·dh, :], the head's slice of its
 *      block's output projection (the weight of the MatMul after z, found from the graph), added to
 *      the last position of zero-shot prompts at each residual layer.
 *
 * Every patched run is a full forward pass of the ONNX model (a foreign model has no suffix engine
 * for heads); tiny and small models only.
 */
import { InputError } from '../errors.js';
import { hostOf } from '../graph/import.js';
import type { HostTensor } from '../runtime/session.js';
import { type PromptRecord, recordsToBatch } from '../tasks/prompt-file.js';
import { argmax, softmaxAt } from '../tasks/score.js';
import { type Patch, promptFeeds } from '../backend/backend.js';
import type { FileBackend } from '../backend/file.js';
import { suggestHooks } from '../backend/suggest-hooks.js';

export interface ForeignFvResult {
  readonly analysis: 'fv';
  /** Heads by AIE, highest first. */
  readonly heads: readonly { readonly layer: number; readonly head: number; readonly aie: number }[];
  readonly topK: number;
  /** Zero-shot accuracy, nothing added. */
  readonly zeroShot: number;
  /** Accuracy with each task's FV added at residual layer ℓ (0..L). */
  readonly curve: readonly { readonly layer: number; readonly accuracy: number }[];
  readonly tasks: readonly string[];
}

export async function foreignFunctionVectors(source: FileBackend, search: readonly PromptRecord[], pairs: readonly PromptRecord[], options: { topK?: number } = {}): Promise<ForeignFvResult> {
  const L = source.layers;
  const zHooks = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_z`);
  for (const h of zHooks) if (!source.facts.hooks.some((x) => x.name === h)) throw new InputError(`${source.facts.file}: no per-head z found for ${h} (function vectors read each head's output before the output projection)`);
  const wo = suggestHooks(source.proto).outputWeights.map((name, l) => {
    const init = name ? (source.proto.graph!.initializer ?? []).find((t) => t.name === name) : undefined;
    if (!init) throw new InputError(`${source.facts.file}: block ${l}'s output projection (a MatMul with a weight after z) was not found`);
    return hostOf(init);
  });
  const tasks = [...new Set(search.map((r) => r.task!))];
  const byTask = (rs: readonly PromptRecord[], role?: string) => tasks.map((t) => rs.filter((r) => r.task === t && (role === undefined || r.role === role)));
  const demos = byTask(search, 'demo');
  const queries = byTask(search, 'query');
  const shuffled = byTask(pairs);

  // 1. Mean z at the last position, per task, layer and head.
  let H = 0;
  let dh = 0;
  const zbar: Float32Array[][] = []; // [task][layer] → [H*dh]
  for (const rs of demos) {
    const batch = recordsToBatch(rs);
    const r = await source.run(promptFeeds(batch), { fetch: zHooks });
    zbar.push(
      zHooks.map((h) => {
        const z = r.hooks[h];
        [H, dh] = [z.shape[2], z.shape[3]];
        return meanAtLast(z);
      }),
    );
  }
  // 2. AIE of each head on shuffled-label prompts.
  const aie = Array.from({ length: L }, () => new Array<number>(H).fill(0));
  for (let t = 0; t < tasks.length; t++) {
    const batch = recordsToBatch(shuffled[t], 'prompt pairs', (r) => r.corrupted!);
    const answers = shuffled[t].map((r) => r.answer!);
    const base = probability((await source.run(promptFeeds(batch))).output, answers);
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < H; h++) {
        const patched = probability((await source.run(promptFeeds(batch), { patches: [headPatch(zHooks[l], zbar[t][l], h, H, dh, batch.seq)] })).output, answers);
        aie[l][h] += (patched - base) / tasks.length;
      }
    }
  }
  const heads = aie.flatMap((row, layer) => row.map((v, head) => ({ layer, head, aie: v }))).sort((a, b) => b.aie - a.aie);
  const topK = Math.min(options.topK ?? 3, heads.length);
  // 3. FV per task: the top heads' z̄ through their slices of W_O.
  const D = wo[0].shape[1];
  const fv = tasks.map((_, t) => {
    const out = new Float32Array(D);
    for (const { layer, head } of heads.slice(0, topK)) {
      const w = wo[layer].data as Float32Array;
      for (let i = 0; i < dh; i++) {
        const zi = zbar[t][layer][head * dh + i];
        const row = (head * dh + i) * D;
        for (let d = 0; d < D; d++) out[d] += zi * w[row + d];
      }
    }
    return out;
  });
  let correct = 0;
  let total = 0;
  const curve = Array.from({ length: L + 1 }, (_, layer) => ({ layer, accuracy: 0 }));
  for (let t = 0; t < tasks.length; t++) {
    const batch = recordsToBatch(queries[t]);
    const answers = queries[t].map((r) => r.answer!);
    correct += accuracy((await source.run(promptFeeds(batch))).output, answers) * answers.length;
    total += answers.length;
    for (let layer = 0; layer <= L; layer++) {
      const hook = source.residual(layer).name;
      const T = batch.seq;
      const mask = new Float32Array(T);
      mask[T - 1] = 1;
      const patch: Patch = { hook, mode: 'add', value: { dtype: 'float32', shape: [1, 1, D], data: fv[t] }, mask: { dtype: 'float32', shape: [1, T, 1], data: mask } };
      curve[layer].accuracy += (accuracy((await source.run(promptFeeds(batch), { patches: [patch] })).output, answers) * answers.length);
    }
  }
  return { analysis: 'fv', heads, topK, zeroShot: correct / total, curve: curve.map((c) => ({ layer: c.layer, accuracy: c.accuracy / total })), tasks };
}

/** z [B, T, H, dh] at the last position, averaged over the batch: [H*dh]. */
function meanAtLast(z: HostTensor): Float32Array {
  const [B, T, H, dh] = z.shape;
  const out = new Float32Array(H * dh);
  const data = z.data as Float32Array;
  for (let b = 0; b < B; b++) for (let i = 0; i < H * dh; i++) out[i] += data[(b * T + T - 1) * H * dh + i] / B;
  return out;
}

/** Writes head h's mean z at the last position (the other heads and positions keep their own). */
function headPatch(hook: string, zbar: Float32Array, h: number, H: number, dh: number, T: number): Patch {
  const mask = new Float32Array(T * H);
  mask[(T - 1) * H + h] = 1;
  return { hook, mode: 'replace', value: { dtype: 'float32', shape: [1, 1, H, dh], data: zbar }, mask: { dtype: 'float32', shape: [1, T, H, 1], data: mask } };
}

/** Each prompt's logits at the last position. */
function lastRows(logits: HostTensor): Float32Array[] {
  const [B, T, V] = logits.shape;
  const x = logits.data as Float32Array;
  return Array.from({ length: B }, (_, b) => x.subarray((b * T + T - 1) * V, (b * T + T) * V));
}

/** Mean softmax probability of each prompt's answer at the last position. */
function probability(logits: HostTensor, answers: readonly number[]): number {
  const rows = lastRows(logits);
  return rows.reduce((sum, row, b) => sum + softmaxAt(row, answers[b]), 0) / rows.length;
}

function accuracy(logits: HostTensor, answers: readonly number[]): number {
  const rows = lastRows(logits);
  return rows.filter((row, b) => argmax(row) === answers[b]).length / rows.length;
}
