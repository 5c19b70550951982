/** The in-context-learning loss of a model on a batch: every scored position counts equally. */
import { Graph, op, type Value } from '../graph/index.js';
import type { ModelConfig } from '../model/config.js';
import { modelInputs } from '../model/inputs.js';
import { Transformer, declareParams } from '../model/transformer.js';
import type { LossProgram } from './step.js';

/** Targets and position weights: int64 token ids for logits, floats [batch, seq, dOut] for vectors. */
export function lossOf(output: Value, cfg: ModelConfig, seq = 'seq', prefix = ''): Value {
  const g = output.graph;
  const weights = g.input(`${prefix}weights`, g.floatType, ['batch', seq]);
  return cfg.output === 'logits'
    ? op.crossEntropy(output, g.input(`${prefix}targets`, 'int64', ['batch', seq]), weights)
    : op.meanSquaredError(output, g.input(`${prefix}targets`, g.floatType, ['batch', seq, cfg.dOut]), weights);
}

/** The ICL loss program for a fresh model initialised from `seed` (null: zeros); `tokenKeep` adds the dropout input `keep`. */
export function iclLossProgram(cfg: ModelConfig, seed: number | null, floatType: 'float32' | 'float64' = 'float32', tokenKeep = false): LossProgram {
  const g = new Graph(floatType);
  const model = new Transformer(cfg, declareParams(g, cfg, seed));
  const { output } = model.forward(modelInputs(g, cfg, 'seq', '', tokenKeep));
  return { graph: g, loss: lossOf(output, cfg) };
}
