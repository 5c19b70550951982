import { describe, expect, it } from 'vitest';
import { ngramCurve, type Task, type TokenBatch } from '../src/tasks/index.js';

/**
 * One prompt of three examples, each x of three symbols then an arrow (the scored position), built
 * so that each order's answer is known by hand. Scored by exact match (a task that is neither DFA
 * nor HMM), so a guess counts only when it is the target.
 */
function handBuilt(): TokenBatch {
  const ARROW = 30;
  const examples = [
    { x: [7, 8, 7], y: 8 }, // 0 shots: only x itself is context; 7 → 8 is in x
    { x: [6, 9, 7], y: 5 }, // after demo [7,8,7,8]: (9,7) unseen and 7 → 8 twice, so no order gets 5
    { x: [3, 9, 7], y: 5 }, // after demo [6,9,7,5]: (9,7) → 5 once, but 7 → 8 twice
  ];
  const T = 4 * examples.length;
  const tokens = new BigInt64Array(T);
  const targets = new BigInt64Array(T);
  const weights = new Float32Array(T);
  const shots = new Int32Array(T).fill(-1);
  examples.forEach(({ x, y }, k) => {
    x.forEach((s, j) => (tokens[4 * k + j] = BigInt(s)));
    tokens[4 * k + 3] = BigInt(ARROW);
    targets[4 * k + 3] = BigInt(y);
    weights[4 * k + 3] = 1;
    shots[4 * k + 3] = k;
  });
  return {
    kind: 'tokens', batch: 1, seq: T, demos: 2, tokens, targets, weights, shots,
    taskIds: new Int32Array([0]), queryPos: new Int32Array([T - 1]), segment: 3, xOffset: 3,
    tasks: [{ family: 'offset' } as unknown as Task],
  };
}

describe('in-context n-gram baselines', () => {
  it('count the query’s own x, back off to lower orders, and score by shots', () => {
    const batch = handBuilt();
    // unigram: 7 is the most frequent symbol everywhere, never the target.
    expect(ngramCurve(batch, 1).byShots).toEqual([0, 0, 0]);
    // bigram: 7 → 8 from x itself at 0 shots; at 2 shots 7 → 8 (twice) beats 7 → 5.
    expect(ngramCurve(batch, 2).byShots).toEqual([1, 0, 0]);
    // trigram: backs off to the bigram while (9, 7) is unseen, then (9, 7) → 5.
    expect(ngramCurve(batch, 3).byShots).toEqual([1, 0, 1]);
  });

  it('does not count an n-gram across the boundary between two demos', () => {
    const batch = handBuilt();
    // Query x = [1, 3, 8], target 7. Inside the demos 8 → 7 once (demo 1); the only 8 → 6 would
    // straddle demo 1's end (…8) and demo 2's start (6…): counted, the tie would go to 6.
    [1, 3, 8].forEach((s, j) => (batch.tokens[8 + j] = BigInt(s)));
    batch.targets[11] = 7n;
    expect(ngramCurve(batch, 2).byShots[2]).toBe(1);
  });

  it('breaks a tie by the lower order\'s counts, as a smoothed n-gram would', () => {
    const batch = handBuilt();
    // Demo [4, 1, 4, 2]: after 4, 1 and 2 once each. Query x = [2, 2, 4], target 2: the tie goes to 2,
    // which the context holds three times against 1's once (by id alone it would go to 1).
    [4, 1, 4].forEach((s, j) => (batch.tokens[j] = BigInt(s)));
    batch.targets[3] = 2n;
    [2, 2, 4].forEach((s, j) => (batch.tokens[4 + j] = BigInt(s)));
    batch.targets[7] = 2n;
    expect(ngramCurve(batch, 2).byShots[1]).toBe(1);
  });

  it('does not count an n-gram from the last demo into the query', () => {
    const batch = handBuilt();
    // Query x = [5, 1, 8] after demo [7, 8, 7, 8], target 7: 8 → 7 once in the demo; the demo's y (8)
    // followed by the query's first symbol (5) would add 8 → 5, and the tie would go to 5.
    [5, 1, 8].forEach((s, j) => (batch.tokens[4 + j] = BigInt(s)));
    batch.targets[7] = 7n;
    expect(ngramCurve(batch, 2).byShots[1]).toBe(1);
  });
});
