/**
 * Foundation figures: the machine's matmul rate through ONNX Runtime, and the cost of a training
 * step against a forward pass of the reference model (4 layers, d_model 128, 4 heads, vocab 128,
 * batch 64 × 64 tokens).
 */
import { Graph, op, toOnnxBytes } from '../graph/index.js';
import { resolveModelConfig } from '../model/config.js';
import { Transformer, declareParams } from '../model/transformer.js';
import { type HostTensor, Session } from '../runtime/session.js';
import { modelInputs } from '../model/inputs.js';
import { iclLossProgram } from '../train/icl-loss.js';
import { resolveOptimizerConfig } from '../train/optimizer.js';
import { Trainer } from '../train/step.js';
import { type Figures, type Repeats, rate, sampleInterleaved } from './timing.js';

export const REFERENCE = { layers: 4, dModel: 128, heads: 4, vocab: 128, maxSeq: 64 } as const;
export const BATCH = 64;
export const SEQ = 64;

/** The FLOPs of an n × n by n × n matmul. */
export const matmulFlops = (n: number) => 2 * n ** 3;

export async function matmulSession(n = 2048): Promise<{ run: () => Promise<unknown>; release: () => Promise<void> }> {
  const g = new Graph('float32');
  g.output(op.matmul(g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n])), 'y');
  const s = await Session.open(toOnnxBytes(g));
  const m: HostTensor = { dtype: 'float32', shape: [n, n], data: new Float32Array(n * n).fill(0.5) };
  return { run: () => s.run({ a: m, b: m }), release: () => s.release() };
}

/** A token batch of the reference size with every position scored. */
export function referenceBatch(vocab: number): Record<string, HostTensor> {
  const n = BATCH * SEQ;
  const tokens = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7919) % vocab));
  const targets = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7919 + 3) % vocab));
  return {
    tokens: { dtype: 'int64', shape: [BATCH, SEQ], data: tokens },
    targets: { dtype: 'int64', shape: [BATCH, SEQ], data: targets },
    weights: { dtype: 'float32', shape: [BATCH, SEQ], data: new Float32Array(n).fill(1) },
  };
}

export async function forwardSession(cfg = resolveModelConfig(REFERENCE)): Promise<Session> {
  const g = new Graph('float32');
  const { output } = new Transformer(cfg, declareParams(g, cfg, 0)).forward(modelInputs(g, cfg));
  g.output(output, 'logits');
  return Session.open(toOnnxBytes(g));
}

/**
 * The matmul peak, a forward pass and both training-step layouts, interleaved: the peak is the
 * yardstick of the scale curve, and train ÷ forward the target (≤ 3.5).
 */
export async function trainStepFigures(repeats: Repeats): Promise<Figures> {
  const cfg = resolveModelConfig(REFERENCE);
  const batch = referenceBatch(cfg.vocab);
  const forward = await forwardSession(cfg);
  const matmul = await matmulSession(2048);
  const opt = resolveOptimizerConfig({ schedule: 'constant' });
  const fused = await Trainer.create(() => iclLossProgram(cfg, 0), opt, { layout: 'fused' });
  const split = await Trainer.create(() => iclLossProgram(cfg, 0), opt, { layout: 'split' });
  const t = await sampleInterleaved(
    {
      matmul: matmul.run,
      forward: () => forward.run({ tokens: batch.tokens }),
      fused: () => fused.step(batch, 1e-4),
      split: () => split.step(batch, 1e-4),
    },
    repeats,
  );
  await Promise.all([forward.release(), matmul.release(), fused.release(), split.release()]);
  return {
    matmul_2048_gflops: rate(t, 'matmul', matmulFlops(2048) / 1e6),
    forward_ms: t.time('forward'),
    train_step_fused_ms: t.time('fused'),
    train_step_split_ms: t.time('split'),
    train_step_over_forward: t.derive((x) => Math.min(x.fused, x.split) / x.forward),
    train_step_over_forward_fused: t.ratio('fused', 'forward'),
    train_step_over_forward_split: t.ratio('split', 'forward'),
    train_tokens_per_s: t.derive((x) => (BATCH * SEQ * 1000) / Math.min(x.fused, x.split)),
    forward_gflops: rate(t, 'forward', forwardFlops(cfg.layers, cfg.dModel, cfg.vocab) / 1e6),
    train_step_target: 3.5,
  };
}

/** Matmul FLOPs of one forward pass of the reference model on one batch. */
function forwardFlops(layers: number, d: number, vocab: number): number {
  const rows = BATCH * SEQ;
  const perLayer = 2 * rows * d * d * 4 + 2 * rows * d * 4 * d * 2 + 2 * 2 * BATCH * SEQ * SEQ * d;
  return layers * perLayer + 2 * rows * d * vocab;
}
