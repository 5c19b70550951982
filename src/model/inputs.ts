/** The model's batch inputs as graph inputs: token ids, or vectors with their markers. */
import type { Graph } from '../graph/index.js';
import type { ModelConfig } from './config.js';
import type { ModelInputs } from './transformer.js';

/**
 * The model's batch inputs as graph inputs, with symbolic batch and sequence sizes. With
 * `tokenKeep`, also `keep` [batch, seq]: each position's embedding is multiplied by it (token-wise
 * dropout during training; inference graphs never have it).
 */
export function modelInputs(g: Graph, cfg: ModelConfig, seq = 'seq', prefix = '', tokenKeep = false): ModelInputs {
  const keep = tokenKeep ? { keep: g.input(`${prefix}keep`, g.floatType, ['batch', seq]) } : {};
  return cfg.input === 'tokens'
    ? { tokens: g.input(`${prefix}tokens`, 'int64', ['batch', seq]), ...keep }
    : { inputs: g.input(`${prefix}inputs`, g.floatType, ['batch', seq, cfg.dIn]), markers: g.input(`${prefix}markers`, 'int64', ['batch', seq]), ...keep };
}
