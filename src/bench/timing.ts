/**
 * Timing for the bench. One sample of a figure swings by 20–40% with the load of a shared machine,
 * so every figure is a median over repeats, with its min and max. The two sides of a ratio run
 * in alternation (a, b, a, b, …) in one process after a warm-up, and the ratio is taken per repeat
 * (a₁/b₁, a₂/b₂, …): a load change during repeat i moves both sides of ratio i alike.
 */

/** A measured figure: the median of `n` repeats, and the smallest and largest of them. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

/** What a bench group reports: spreads for what was timed, plain numbers for sizes and targets. */
export type Figure = number | Spread;
export type Figures = Record<string, Figure>;

/** How many timed repeats (and warm-up calls) each group runs; the same for every group of a run. */
export interface Repeats {
  readonly timed: number;
  readonly warmup: number;
  readonly quick: boolean;
}

export const FULL: Repeats = { timed: 5, warmup: 1, quick: false };
/** `--quick`: fewer repeats, for a look, not for a target (the JSON says so). */
export const QUICK: Repeats = { timed: 2, warmup: 1, quick: true };

export function spread(xs: readonly number[]): Spread {
  if (!xs.length) throw new Error('no samples to summarise');
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Per-name milliseconds of each repeat, in the order they ran. */
export class Samples {
  constructor(readonly ms: Readonly<Record<string, readonly number[]>>) {}

  get repeats(): number {
    return Object.values(this.ms)[0]?.length ?? 0;
  }

  /** The times of one side. */
  time(name: string): Spread {
    return spread(this.ms[name]);
  }

  /** `a / b`, taken per repeat. */
  ratio(a: string, b: string): Spread {
    return this.derive((t) => t[a] / t[b]);
  }

  /** Any figure computed from one repeat's times (by name), taken per repeat. */
  derive(f: (times: Readonly<Record<string, number>>) => number): Spread {
    const names = Object.keys(this.ms);
    return spread(Array.from({ length: this.repeats }, (_, i) => f(Object.fromEntries(names.map((n) => [n, this.ms[n][i]])))));
  }
}

/**
 * Runs `warmup` rounds untimed, then `timed` rounds of every function in turn (a, b, c, a, b, c, …),
 * and returns each call's milliseconds.
 */
export async function sampleInterleaved(fns: Readonly<Record<string, () => Promise<unknown>>>, repeats: Repeats): Promise<Samples> {
  const names = Object.keys(fns);
  for (let i = 0; i < repeats.warmup; i++) for (const n of names) await fns[n]();
  const ms: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < repeats.timed; i++) {
    for (const n of names) {
      const t0 = performance.now();
      await fns[n]();
      ms[n].push(performance.now() - t0);
    }
  }
  return new Samples(ms);
}

/** A figure that is a rate: `work / ms` per repeat (e.g. FLOPs ÷ 1e6 gives GFLOP/s). */
export function rate(s: Samples, name: string, work: number): Spread {
  return s.derive((t) => work / t[name]);
}
