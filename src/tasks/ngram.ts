/**
 * In-context n-gram baselines for the sequence families (GINC's HMMs, RegBench's DFAs): the
 * predictor a reader compares an in-context learner with (Akyürek et al. 2024 compare with
 * in-context n-gram models). At each scored position it counts what followed each symbol in the
 * demos seen so far (each demo is its x then its y) and predicts the most frequent successor of
 * x's last symbol (bigram) or the most frequent symbol (unigram); ties go to the smaller id, and a
 * bigram with no count for that symbol falls back to the unigram. Scored as the model is
 * (`tokenCorrect`), so the curves are comparable shot for shot.
 */
import { type ShotCurve, exampleInput, shotCurve, tokenCorrect } from './score.js';
import type { TokenBatch } from './types.js';

export type NgramOrder = 1 | 2;

/** The baseline's score by number of shots on `batch`'s scored positions. */
export function ngramCurve(batch: TokenBatch, order: NgramOrder): ShotCurve {
  const T = batch.seq;
  const scores: { shots: number; value: number; target: number }[] = [];
  for (let b = 0; b < batch.batch; b++) {
    const unigram = new Map<number, number>();
    const bigram = new Map<number, Map<number, number>>();
    for (let p = 0; p < T; p++) {
      const i = b * T + p;
      if (batch.weights[i] === 0) continue;
      const x = exampleInput(batch, i);
      const guess = (order === 2 ? best(bigram.get(x[x.length - 1])) : null) ?? best(unigram) ?? 0;
      scores.push({ shots: batch.shots[i], value: tokenCorrect(batch, guess, i) ? 1 : 0, target: 0 });
      // This example joins the context of the next scored position: x then its y.
      const seq = [...x, Number(batch.targets[i])];
      seq.forEach((s, k) => {
        bump(unigram, s);
        if (k > 0) {
          const row = bigram.get(seq[k - 1]) ?? new Map<number, number>();
          bump(row, s);
          bigram.set(seq[k - 1], row);
        }
      });
    }
  }
  return shotCurve('tokens', scores);
}

function bump(m: Map<number, number>, k: number): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function best(m: Map<number, number> | undefined): number | null {
  if (!m || m.size === 0) return null;
  let arg = -1;
  let top = -1;
  for (const [k, n] of m) if (n > top || (n === top && k < arg)) [arg, top] = [k, n];
  return arg;
}
