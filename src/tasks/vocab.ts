/**
 * Token ids, vector markers, and what a model needs to know about a task suite's inputs and outputs.
 */
import type { TaskConfig } from './config.js';

/** Marker ids of vector prompts: which learned embedding (if any) a position adds. */
export const MARKER = Object.freeze({ data: 0, arrow: 1, sep: 2 });

/** Symbols are 0..V-1; the arrow and separator come right after them. */
export function specialTokens(cfg: TaskConfig): { arrow: number; sep: number; vocabSize: number } {
  return { arrow: cfg.vocab, sep: cfg.vocab + 1, vocabSize: cfg.vocab + 2 };
}

export type TaskIO =
  | { input: 'tokens'; vocabSize: number; output: 'logits'; outDim: number }
  | { input: 'vectors'; dIn: number; markers: number; output: 'scalar'; outDim: number };

/** The model's input and output sizes for this suite. */
export function taskIO(cfg: TaskConfig): TaskIO {
  if (cfg.kind === 'linreg' || cfg.kind === 'sine') {
    return { input: 'vectors', dIn: cfg.kind === 'linreg' ? cfg.linreg.dIn : 1, markers: 3, output: 'scalar', outDim: 1 };
  }
  const { vocabSize } = specialTokens(cfg);
  return { input: 'tokens', vocabSize, output: 'logits', outDim: vocabSize };
}

/** Token ids as text for reports: symbols as numbers, '→' and ','. */
export function renderTokens(tokens: ArrayLike<number | bigint>, cfg: TaskConfig): string[] {
  const { arrow, sep } = specialTokens(cfg);
  return Array.from(tokens, (t) => {
    const id = Number(t);
    return id === arrow ? '→' : id === sep ? ',' : id >= 0 && id < cfg.vocab ? String(id) : `<${id}>`;
  });
}
