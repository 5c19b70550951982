/** The model's one typed config, with its defaults in one frozen object. */
import { ConfigError } from '../errors.js';
import { oneOf, resolveConfig } from '../util/config.js';

export const POSITIONAL = ['learned', 'none', 'rotary'] as const;
export type Positional = (typeof POSITIONAL)[number];

export interface ModelConfig {
  /** Number of transformer blocks. */
  layers: number;
  /** Width of the residual stream. */
  dModel: number;
  heads: number;
  /** Width of the MLP's hidden layer; 0 means 4·dModel, as in GPT-2. */
  dMlp: number;
  /**
   * Blocks without an MLP (TransformerLens's attn_only): x = x + attn(ln1(x)). Their
   * hook_mlp_out is kept, always zero, so that every analysis reads the same hooks.
   */
  attnOnly: boolean;
  /** Longest prompt the model accepts (the size of the learned position table). */
  maxSeq: number;
  /** 'learned' (GPT-2), 'none' (NoPE) or 'rotary'; the latter two can run past maxSeq in principle. */
  positional: Positional;
  /** 'tokens': an embedding table. 'vectors': a linear read-in of a dIn vector plus marker embeddings. */
  input: 'tokens' | 'vectors';
  /** Vocabulary size, for token input or logit output. */
  vocab: number;
  /** Width of an input vector, for 'vectors' input. */
  dIn: number;
  /** 'logits' over the vocabulary, or 'vector': a linear read-out of dOut numbers (regression). */
  output: 'logits' | 'vector';
  dOut: number;
  /** Standard deviation of GPT-2's normal initialisation. */
  initStd: number;
  lnEpsilon: number;
  /**
   * Dropout probability during training. Only 0 is accepted for now: the synthetic tasks have
   * unlimited data, and dropout masks would need to come from the resumable data RNG.
   */
  dropout: number;
}

export const MODEL_DEFAULTS: Readonly<ModelConfig> = Object.freeze({
  layers: 4,
  dModel: 128,
  heads: 4,
  dMlp: 0,
  attnOnly: false,
  maxSeq: 64,
  positional: 'learned',
  input: 'tokens',
  vocab: 128,
  dIn: 1,
  output: 'logits',
  dOut: 1,
  initStd: 0.02,
  lnEpsilon: 1e-5,
  dropout: 0,
});

export function resolveModelConfig(user: unknown): ModelConfig {
  const c = resolveConfig(MODEL_DEFAULTS, user, 'model');
  oneOf(c.positional, POSITIONAL, 'model.positional');
  oneOf(c.input, ['tokens', 'vectors'], 'model.input');
  oneOf(c.output, ['logits', 'vector'], 'model.output');
  for (const key of ['layers', 'dModel', 'heads', 'maxSeq', 'vocab', 'dIn', 'dOut'] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1) throw new ConfigError(`must be a positive integer, got ${c[key]}`, `model.${key}`);
  }
  if (!Number.isInteger(c.dMlp) || c.dMlp < 0) throw new ConfigError(`must be a non-negative integer (0 means 4·dModel), got ${c.dMlp}`, 'model.dMlp');
  if (c.attnOnly && c.dMlp !== 0) throw new ConfigError('an attention-only model has no MLP: drop model.dMlp', 'model.dMlp');
  if (c.dModel % c.heads !== 0) throw new ConfigError(`dModel ${c.dModel} is not divisible by heads ${c.heads}`, 'model.heads');
  if (c.positional === 'rotary' && (c.dModel / c.heads) % 2 !== 0) throw new ConfigError('rotary positions need an even head width', 'model.positional');
  if (c.dropout !== 0) throw new ConfigError(`dropout is not implemented yet; only 0 is accepted, got ${c.dropout}`, 'model.dropout');
  return c;
}

export const dMlpOf = (c: ModelConfig): number => (c.attnOnly ? 0 : c.dMlp || 4 * c.dModel);
export const dHeadOf = (c: ModelConfig): number => c.dModel / c.heads;
