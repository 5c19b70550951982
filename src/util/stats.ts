/**
 * Means with 95% intervals, over seeds, prompts or tasks.
 *
 * The interval is a percentile bootstrap of the mean (2000 resamples from a fixed seed, so the same
 * values always give the same interval). Unlike a t-interval it stays inside the range of the
 * values, so an accuracy's interval stays inside [0, 1]; with very few values it is narrower than
 * the truth, so read intervals over 2-3 seeds as descriptive.
 */
import { Rng } from './rng.js';

export interface Estimate {
  readonly mean: number;
  /** The 95% interval's ends; equal to the mean when n < 2. */
  readonly low: number;
  readonly high: number;
  readonly n: number;
}

const RESAMPLES = 2000;

/** The mean of `values` with its 95% percentile-bootstrap interval. NaNs and nulls are left out. */
export function estimate(values: readonly (number | null)[]): Estimate {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: NaN, low: NaN, high: NaN, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1 || xs.every((x) => x === xs[0])) return { mean, low: mean, high: mean, n };
  const rng = new Rng(7);
  const means = new Float64Array(RESAMPLES);
  for (let r = 0; r < RESAMPLES; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += xs[rng.int(n)];
    means[r] = s / n;
  }
  means.sort();
  return { mean, low: means[Math.floor(0.025 * RESAMPLES)], high: means[Math.ceil(0.975 * RESAMPLES) - 1], n };
}
