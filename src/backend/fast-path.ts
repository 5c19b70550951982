/**
 * The checkpoint Engine's fast path: patched variants of a base run through the suffix forward
 * (model/suffix.ts). Variants are grouped by their first patched position; a group runs as one
 * batch that recomputes only positions from there on, and only layers from each variant's entry
 * site upward, reading the base run's keys and values before the group's position.
 */
import { InputError } from '../errors.js';
import { type ModelConfig, dHeadOf } from '../model/config.js';
import { type SuffixPlan, activeAt, siteOrder } from '../model/suffix.js';
import type { HostTensor, Session } from '../runtime/session.js';
import { type AnalysisRun, type Site, type SitePatch, type Variant, forEachWrite, range, siteKey, writeValue } from './backend.js';

/** The fast engine's base run: also the keys and values its patched variants reuse. */
export interface BaseRun extends AnalysisRun {
  /** k[ℓ], v[ℓ] [B, H, T, dh] for each block (after rotary). */
  readonly k: readonly Float32Array[];
  readonly v: readonly Float32Array[];
}

/** What a group run needs of the engine. */
export interface FastPathContext {
  readonly cfg: ModelConfig;
  /** Width of the output: vocab (logits) or dOut. */
  readonly outWidth: number;
  /** Most suffix rows (prompts × variants × positions) per run. */
  readonly rowsPerRun: number;
  /** The session of a plan's suffix graph (opened once per plan). */
  readonly session: (plan: SuffixPlan) => Promise<Session>;
  /** Where a run's feeds are written (reused from run to run). */
  readonly feeds: FeedArena;
}

/**
 * Float buffers reused from run to run. A run reads its feeds only while it runs, so the next run
 * may write over them; a new large Float32Array each time cost its zeroing and page faults, 19 ms
 * of a 300 ms patch sweep (profiled).
 */
export class FeedArena {
  private buffer = new Float32Array(0);
  private used = 0;

  /** Starts a run's feeds: views handed out before may be overwritten from now on. */
  reset(): void {
    this.used = 0;
  }

  /** Lets the buffer go (the backend is closing). */
  release(): void {
    this.buffer = new Float32Array(0);
    this.used = 0;
  }

  /** `length` floats holding whatever an earlier run left there: the caller writes every one. */
  floats(length: number): Float32Array {
    if (this.used + length > this.buffer.length) {
      // Views already handed out keep the old buffer; the next run starts in the larger one.
      this.buffer = new Float32Array(Math.max(2 * this.buffer.length, length));
      this.used = 0;
    }
    this.used += length;
    return this.buffer.subarray(this.used - length, this.used);
  }
}

/**
 * The output at the last position [B, O] of each variant of one group: every variant's first
 * patched position is `start`.
 */
export async function runGroup(ctx: FastPathContext, base: BaseRun, start: number, variants: readonly Variant[]): Promise<Float32Array[]> {
  const cfg = ctx.cfg;
  const L = cfg.layers;
  const [H, dh, D, O] = [cfg.heads, dHeadOf(cfg), cfg.dModel, ctx.outWidth];
  const [B, T] = [base.batch, base.seq];
  const S = T - start;
  // Each variant enters at its earliest site; later residual patches become in-graph rewrites.
  const entries = variants.map((v) => v.map((p) => p.site).reduce((a, b) => (siteOrder(b) < siteOrder(a) ? b : a)));
  variants.forEach((v, i) => {
    for (const p of v) {
      if (p.site.kind === 'z' && siteKey(p.site) !== siteKey(entries[i])) {
        throw new InputError(`the fast path takes a z patch only as a variant's first site; ${siteKey(p.site)} comes after ${siteKey(entries[i])} (use the naive path)`);
      }
    }
  });
  const order = range(variants.length).sort((a, b) => siteOrder(entries[a]) - siteOrder(entries[b]) || a - b);
  const plan: SuffixPlan = {
    resid: range(L + 1).map((l) => entries.filter((e) => e.kind === 'resid' && e.layer === l).length),
    z: range(L).map((l) => entries.filter((e) => e.kind === 'z' && e.layer === l).length),
    inject: [...new Set(variants.flatMap((v, i) => v.filter((p) => siteKey(p.site) !== siteKey(entries[i])).map((p) => p.site.layer)))].sort((a, b) => a - b),
    prefix: start > 0,
    single: S === 1,
  };
  const session = await ctx.session(plan);
  const wanted = new Set(session.inputNames);
  const C = variants.length;
  // A one-position suffix holds its scores against every prefix key at once: count those too.
  const rowsPerPrompt = C * S * (plan.single ? start + 1 : 1);
  const chunk = Math.max(1, Math.floor(ctx.rowsPerRun / rowsPerPrompt));
  const results = variants.map(() => new Float32Array(B * O));
  const positions: HostTensor = { dtype: 'int64', shape: [S], data: BigInt64Array.from(range(S), (i) => BigInt(start + i)) };

  for (let n0 = 0; n0 < B; n0 += chunk) {
    const N = Math.min(chunk, B - n0);
    ctx.feeds.reset();
    const feeds: Record<string, HostTensor> = { positions };
    const rowsOf = (src: Float32Array, n: number, width: number) => src.subarray(((n0 + n) * T + start) * width, ((n0 + n) * T + T) * width);
    // The base run's keys and values go whole, as views: the graph reads the positions it needs.
    const view = (src: Float32Array): HostTensor => ({ dtype: 'float32', shape: [N, H, T, dh], data: src.subarray(n0 * H * T * dh, (n0 + N) * H * T * dh) });
    for (let l = 0; l < L; l++) {
      if (!wanted.has(`k.${l}`)) continue;
      feeds[`k.${l}`] = view(base.k[l]);
      feeds[`v.${l}`] = view(base.v[l]);
    }
    // Entry rows: the base run's rows from `start` on, with the variant's entry patches written in.
    const entryFeed = (site: Site, members: number[]) => {
      const width = site.kind === 'resid' ? D : H * dh;
      const src = site.kind === 'resid' ? base.resid[site.layer] : base.z![site.layer];
      const data = ctx.feeds.floats(N * members.length * S * width);
      // Each member's patches at this site, found once rather than for every prompt.
      const key = siteKey(site);
      const patches = members.map((vi) => variants[vi].filter((p) => siteKey(p.site) === key));
      for (let n = 0; n < N; n++) {
        const rows = rowsOf(src, n, width);
        patches.forEach((own, c) => {
          const at = (n * members.length + c) * S * width;
          data.set(rows, at);
          for (const p of own) writePatch(data, at, p, n0 + n, start, site.kind === 'resid' ? D : dh, H);
        });
      }
      return data;
    };
    for (let l = 0; l <= L; l++) {
      const members = order.filter((i) => entries[i].kind === 'resid' && entries[i].layer === l);
      if (!members.length) continue;
      feeds[`resid.${l}`] = { dtype: 'float32', shape: [N, members.length, S, D], data: entryFeed({ kind: 'resid', layer: l }, members) };
    }
    for (let l = 0; l < L; l++) {
      const members = order.filter((i) => entries[i].kind === 'z' && entries[i].layer === l);
      if (!members.length) continue;
      if (!base.z) throw new InputError('z patches need a base run with z (base(feeds, { z: true }))');
      feeds[`z.${l}`] = { dtype: 'float32', shape: [N, members.length, S, H, dh], data: entryFeed({ kind: 'z', layer: l }, members) };
      const zbase = ctx.feeds.floats(N * S * D);
      for (let n = 0; n < N; n++) zbase.set(rowsOf(base.resid[l], n, D), n * S * D);
      feeds[`zbase.${l}`] = { dtype: 'float32', shape: [N, 1, S, D], data: zbase };
    }
    for (const l of plan.inject) {
      const Cl = activeAt(plan, l);
      const keep = ctx.feeds.floats(N * Cl * S).fill(1);
      const add = ctx.feeds.floats(N * Cl * S * D).fill(0);
      order.slice(0, Cl).forEach((vi, c) => {
        for (const p of variants[vi]) {
          if (p.site.kind !== 'resid' || p.site.layer !== l || siteKey(p.site) === siteKey(entries[vi])) continue;
          forEachWrite(p, n0, N, D, (n, pos, value) => {
            const cell = (n * Cl + c) * S + pos - start;
            if (p.mode === 'replace') keep[cell] = 0;
            writeValue(add, cell * D, value, p.mode);
          });
        }
      });
      feeds[`keep.${l}`] = { dtype: 'float32', shape: [N, Cl, S, 1], data: keep };
      feeds[`add.${l}`] = { dtype: 'float32', shape: [N, Cl, S, D], data: add };
    }
    const out = (await session.run(feeds, ['out']))['out'].data as Float32Array; // [N, C, O]
    order.forEach((vi, c) => {
      for (let n = 0; n < N; n++) results[vi].set(out.subarray((n * C + c) * O, (n * C + c + 1) * O), (n0 + n) * O);
    });
  }
  return results;
}

/** Whether every patch of `v` writes, for every prompt, exactly the base run's own value. */
export function writesNothing(v: Variant, base: BaseRun, cfg: ModelConfig): boolean {
  const [H, dh, D, T] = [cfg.heads, dHeadOf(cfg), cfg.dModel, base.seq];
  for (const p of v) {
    if (p.site.kind === 'z' && !base.z) return false;
    const src = p.site.kind === 'resid' ? base.resid[p.site.layer] : base.z![p.site.layer];
    const stride = p.site.kind === 'resid' ? D : H * dh;
    const offset = p.site.kind === 'z' && p.head !== undefined ? p.head * dh : 0;
    for (let n = 0; n < base.batch; n++) {
      for (let i = 0; i < p.positions.length; i++) {
        const value = p.value(n, i);
        if (value === null) continue;
        const at = (n * T + p.positions[i]) * stride + offset;
        for (let d = 0; d < value.length; d++) if (p.mode === 'replace' ? value[d] !== src[at + d] : value[d] !== 0) return false;
      }
    }
  }
  return true;
}

/** Writes one patch into a variant's entry rows [S, width·(H or 1)] starting at `at`, for prompt `n`. */
function writePatch(data: Float32Array, at: number, p: SitePatch, n: number, start: number, width: number, heads: number): void {
  const z = p.site.kind === 'z';
  const count = z && p.head === undefined ? heads * width : width;
  forEachWrite(p, n, 1, count, (_, pos, value) => {
    const row = at + (pos - start) * (z ? heads * width : width);
    writeValue(data, z && p.head !== undefined ? row + p.head * width : row, value, p.mode);
  });
}

/** The prompts `indices` of a base run, as a base run of their own. */
export function subsetBase(base: BaseRun, indices: readonly number[]): BaseRun {
  const pick = (a: Float32Array) => {
    const per = a.length / base.batch;
    const out = new Float32Array(indices.length * per);
    indices.forEach((n, i) => out.set(a.subarray(n * per, (n + 1) * per), i * per));
    return out;
  };
  return {
    batch: indices.length,
    seq: base.seq,
    resid: base.resid.map(pick),
    k: base.k.map(pick),
    v: base.v.map(pick),
    z: base.z ? base.z.map(pick) : null,
    out: pick(base.out),
  };
}

