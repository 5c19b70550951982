/**
 * In-context n-gram baselines for the sequence families (GINC's HMMs, RegBench's DFAs): the
 * predictor a reader compares an in-context learner with (Akyürek et al. 2024 compare with
 * in-context n-gram models). At each scored position it counts the n-grams of everything the model
 * has seen there: each earlier demo (its x then its y) and the query's own x, without n-grams that
 * straddle two demos. It predicts the most frequent symbol after x's last n − 1 symbols, backing
 * off to the next lower order when that context was never seen (a trigram to the bigram, the
 * bigram to the unigram); ties go to the symbol the lower orders count more, then to the smaller
 * id. Scored as the model is (`tokenCorrect`), so the curves are comparable shot for shot.
 */
import { type ShotCurve, exampleInput, shotCurve, tokenCorrect } from './score.js';
import type { TokenBatch } from './types.js';

export type NgramOrder = 1 | 2 | 3;

/**
 * The baseline's score by number of shots on `batch`'s scored positions: one per example (its
 * arrow), as `sampleBatch` draws them; a batch with targets inside x (`addSymbolTargets`) is not one.
 */
export function ngramCurve(batch: TokenBatch, order: NgramOrder): ShotCurve {
  const T = batch.seq;
  const scores: { shots: number; value: number; target: number }[] = [];
  for (let b = 0; b < batch.batch; b++) {
    const demos = countTables(order);
    for (let p = 0; p < T; p++) {
      const i = b * T + p;
      if (batch.weights[i] === 0) continue;
      const x = exampleInput(batch, i);
      // The query's own x in a table of its own, so no n-gram joins it to the last demo.
      const query = countTables(order);
      addSequence(query, x);
      scores.push({ shots: batch.shots[i], value: tokenCorrect(batch, predict([demos, query], x), i) ? 1 : 0, target: 0 });
      // This example joins the context of the next scored position: x then its y.
      addSequence(demos, [...x, Number(batch.targets[i])]);
    }
  }
  return shotCurve('tokens', scores);
}

/** counts[n] maps an n-symbol context, joined as a key, to its successors' counts. */
type Counts = Map<string, Map<number, number>>[];

function countTables(order: NgramOrder): Counts {
  return Array.from({ length: order }, () => new Map());
}

/** Counts every n-gram (n = 1..tables) that lies wholly inside `seq`. */
function addSequence(counts: Counts, seq: readonly number[]): void {
  seq.forEach((s, k) => {
    for (let n = 0; n < counts.length && n <= k; n++) {
      const key = seq.slice(k - n, k).join(',');
      const row = counts[n].get(key) ?? new Map<number, number>();
      row.set(s, (row.get(s) ?? 0) + 1);
      counts[n].set(key, row);
    }
  });
}

/**
 * The most frequent successor of x's longest counted context, over all `tables` together; ties go
 * to the symbol the next lower order counts more often (as a smoothed n-gram would), then to the
 * smaller id. 0 when nothing was counted.
 */
function predict(tables: readonly Counts[], x: readonly number[]): number {
  const rows = tables[0].map((_, n) => {
    if (n > x.length) return new Map<number, number>();
    const key = x.slice(x.length - n).join(',');
    const sum = new Map<number, number>();
    for (const t of tables) for (const [symbol, c] of t[n].get(key) ?? []) sum.set(symbol, (sum.get(symbol) ?? 0) + c);
    return sum;
  });
  let top = rows.length - 1;
  while (top >= 0 && rows[top].size === 0) top--;
  if (top < 0) return 0;
  let best = -1;
  for (const symbol of rows[top].keys()) if (best < 0 || better(rows, top, symbol, best)) best = symbol;
  return best;
}

/** Whether `a` beats `b` by counts from order `top` down, then by the smaller id. */
function better(rows: readonly Map<number, number>[], top: number, a: number, b: number): boolean {
  for (let n = top; n >= 0; n--) {
    const [ca, cb] = [rows[n].get(a) ?? 0, rows[n].get(b) ?? 0];
    if (ca !== cb) return ca > cb;
  }
  return a < b;
}
