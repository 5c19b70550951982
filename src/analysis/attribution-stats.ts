/**
 * How attribution patching's estimates are compared with exact patching: Pearson r, top-k
 * overlap, and the warnings a site or a row gets where the linear estimate is weak.
 */
import { range } from '../backend/backend.js';

/** A site whose estimate tracks exact patching worse than this (Pearson r) gets a warning. */
export const WEAK_R = 0.7;
/** A row (block, or block and head) whose estimates miss exact patching by more than this (normalised units) gets a warning. */
export const WEAK_ERROR = 0.25;
/** A row whose exact effects reach this, but whose estimate correlates with them worse than WEAK_R, gets a warning. */
export const WEAK_ROW_EFFECT = 0.1;

export function siteWarnings(site: string, est: number[][], exact: number[][] | null, rows: readonly string[], size: number[][], r: number | null): string[] {
  const out: string[] = [];
  if (exact) {
    if (r === null) out.push(`${site}: exact patching is flat here, so the correlation is undefined; compare the maps by eye`);
    else if (r < WEAK_R) out.push(`${site}: attribution tracks exact patching weakly (r = ${r.toFixed(2)}): read this map as a hint, not a measurement`);
    rows.forEach((row, i) => {
      const worst = Math.max(...est[i].map((e, j) => Math.abs(e - exact[i][j])));
      if (worst > WEAK_ERROR) out.push(`${row}: attribution misses exact patching by up to ${worst.toFixed(2)} (normalised): the patch is too large, or sits at a saturated nonlinearity, for a linear estimate`);
      else {
        // Smaller misses that still lose the row's pattern (typically the embeddings, where a patch swaps a token).
        const big = Math.max(...exact[i].map(Math.abs));
        const rr = pearson(est[i], exact[i]);
        const scale = est[i].reduce((a, e) => a + Math.abs(e), 0) / exact[i].reduce((a, e) => a + Math.abs(e), 0);
        if (big < WEAK_ROW_EFFECT) return;
        if (rr === null || rr < WEAK_R) out.push(`${row}: attribution misses this row's pattern (row r = ${rr === null ? 'undefined' : rr.toFixed(2)}; exact effects up to ${big.toFixed(2)})`);
        else if (scale < 0.5 || scale > 2) out.push(`${row}: attribution has the pattern (row r = ${rr.toFixed(2)}) but ${scale < 1 ? `${(1 / scale).toFixed(1)}× too small` : `${scale.toFixed(1)}× too large`}: a saturated nonlinearity between this site and the answer`);
      }
    });
  } else {
    // No exact run to compare with: flag where the approximation is known to be poor.
    if (site === 'resid_pre') out.push(`${rows[0]}: patches of the embeddings swap token identities, where attribution is least reliable`);
    rows.forEach((row, i) => {
      const big = Math.max(...size[i].filter(Number.isFinite), 0);
      if (big > 1) out.push(`${row}: patches as large as the activation itself (‖Δ‖/‖a‖ up to ${big.toFixed(1)}): attribution is unreliable for them; check with exact patching`);
    });
  }
  return out;
}

export function pearson(a: readonly number[], b: readonly number[]): number | null {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let [sab, saa, sbb] = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : null;
}

/** The share of the k cells largest in |a| that are also among the k largest in |b|. */
export function topKOverlap(a: readonly number[], b: readonly number[], k: number): number {
  const top = (xs: readonly number[]) => new Set(range(xs.length).sort((i, j) => Math.abs(xs[j]) - Math.abs(xs[i]) || i - j).slice(0, k));
  const [ta, tb] = [top(a), top(b)];
  return [...ta].filter((i) => tb.has(i)).length / k;
}
