/** Means with 95% confidence intervals (Student's t), over seeds, prompts or tasks. */
import { mean, sampleStandardDeviation } from 'simple-statistics';

export interface Estimate {
  readonly mean: number;
  /** The 95% interval's ends; equal to the mean when n < 2. */
  readonly low: number;
  readonly high: number;
  readonly n: number;
}

// t quantiles at 0.975 for 1..30 degrees of freedom; the normal 1.96 beyond.
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export function tCritical(df: number): number {
  return df < 1 ? NaN : df <= T975.length ? T975[df - 1] : 1.96;
}

export function estimate(values: readonly number[]): Estimate {
  const n = values.length;
  if (n === 0) return { mean: NaN, low: NaN, high: NaN, n };
  const m = mean(values as number[]);
  if (n < 2) return { mean: m, low: m, high: m, n };
  const half = (tCritical(n - 1) * sampleStandardDeviation(values as number[])) / Math.sqrt(n);
  return { mean: m, low: m - half, high: m + half, n };
}
