/**
 * Means with 95% intervals, over seeds, prompts or tasks.
 *
 * The interval is a percentile bootstrap of the mean (1000 resamples from a fixed seed, so the same
 * values always give the same interval). For values that are all 0 or 1 (per-query accuracy) the
 * bootstrap distribution of the mean is Binomial(n, p)/n, so its quantiles are computed exactly
 * instead of sampled. Unlike a t-interval it stays inside the range of the values, so an
 * accuracy's interval stays inside [0, 1]; with very few values it is narrower than the truth, so
 * read intervals over 2-3 seeds as descriptive.
 */
export interface Estimate {
  readonly mean: number;
  /** The 95% interval's ends; equal to the mean when n < 2. */
  readonly low: number;
  readonly high: number;
  readonly n: number;
}

const RESAMPLES = 1000;

/** The mean of `values` with its 95% percentile-bootstrap interval. NaNs and nulls are left out. */
export function estimate(values: readonly (number | null)[]): Estimate {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  const n = xs.length;
  if (n === 0) return { mean: NaN, low: NaN, high: NaN, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1 || xs.every((x) => x === xs[0])) return { mean, low: mean, high: mean, n };
  if (xs.every((x) => x === 0 || x === 1)) return { mean, ...binomialQuantiles(mean, n), n };
  // mulberry32, inlined: analyses take thousands of these estimates, so the draw must be cheap.
  let state = 0x9e3779b9;
  const means = new Float64Array(RESAMPLES);
  for (let r = 0; r < RESAMPLES; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      s += xs[(((t ^ (t >>> 14)) >>> 0) % n)];
    }
    means[r] = s / n;
  }
  means.sort();
  return { mean, low: means[Math.floor(0.025 * RESAMPLES)], high: means[Math.ceil(0.975 * RESAMPLES) - 1], n };
}

/** The 2.5% and 97.5% quantiles of Binomial(n, p)/n: the exact bootstrap interval of a mean of 0/1 values. */
function binomialQuantiles(p: number, n: number): { low: number; high: number } {
  // pmf by the recurrence pmf(k+1) = pmf(k)·(n−k)/(k+1)·p/(1−p), in logs so large n cannot underflow.
  const logs = new Float64Array(n + 1);
  logs[0] = n * Math.log1p(-p);
  for (let k = 0; k < n; k++) logs[k + 1] = logs[k] + Math.log((n - k) / (k + 1)) + Math.log(p / (1 - p));
  const top = Math.max(...logs);
  const pmf = Array.from(logs, (l) => Math.exp(l - top));
  const total = pmf.reduce((a, b) => a + b, 0);
  let [cdf, low, high] = [0, NaN, NaN];
  for (let k = 0; k <= n; k++) {
    cdf += pmf[k] / total;
    if (Number.isNaN(low) && cdf >= 0.025) low = k / n;
    if (Number.isNaN(high) && cdf >= 0.975) high = k / n;
  }
  return { low, high: Number.isNaN(high) ? 1 : high };
}

/** (score − zero-shot) ÷ (ICL − zero-shot); the same for nMSE, where both differences are negative. */
export function share(score: number, zeroShot: number, icl: number): number {
  const gain = icl - zeroShot;
  return Math.abs(gain) < 1e-9 ? 0 : (score - zeroShot) / gain;
}
