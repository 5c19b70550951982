/** The inference graph a checkpoint holds: the forward pass with every hook named, and its output. */
import { Graph } from '../graph/index.js';
import type { ModelConfig } from './config.js';
import { modelInputs } from './inputs.js';
import { Transformer, declareParams } from './transformer.js';

export const outputName = (cfg: ModelConfig): string => (cfg.output === 'logits' ? 'logits' : 'predictions');

/**
 * The inference graph of `cfg`, hooks named, weights a fresh init from `seed` (null: zeros, for a
 * graph whose weights are bound when it is written, as a checkpoint's are).
 */
export function inferenceGraph(cfg: ModelConfig, seed: number | null = 0): { graph: Graph; hooks: string[] } {
  const g = new Graph('float32');
  const { output, hooks } = new Transformer(cfg, declareParams(g, cfg, seed)).forward(modelInputs(g, cfg), { nameHooks: true });
  g.output(output, outputName(cfg));
  return { graph: g, hooks: [...hooks.keys()] };
}
