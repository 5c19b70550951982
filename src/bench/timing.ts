/** Timing helpers for the bench: medians over interleaved repeats, since this machine is shared. */
export async function timeIt(fn: () => Promise<unknown>, repeats: number, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/**
 * Times several functions in alternation (a, b, c, a, b, c, ...) so that a change in machine load
 * affects all of them alike, and returns each one's median in milliseconds.
 */
export async function timeInterleaved(fns: Readonly<Record<string, () => Promise<unknown>>>, repeats: number, warmup = 2): Promise<Record<string, number>> {
  const names = Object.keys(fns);
  for (let i = 0; i < warmup; i++) for (const n of names) await fns[n]();
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < repeats; i++) {
    for (const n of names) {
      const t0 = performance.now();
      await fns[n]();
      times[n].push(performance.now() - t0);
    }
  }
  return Object.fromEntries(names.map((n) => [n, median(times[n])]));
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
