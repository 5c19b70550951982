/**
 * Activation patching on ICL prompts. A clean prompt and a corrupted one share their xs and their
 * query and differ only in the demos' labels: those of another task, or the same labels shuffled.
 * One generic routine, `patchSweep`, writes activations of a *source* run into a *base* run at
 * a list of cells and scores each patched run at the query; thin presets fix the site and axes:
 *
 *   residGrid   resid_pre / resid_post × position        rows: blocks, columns: positions
 *   headGrid    attn.hook_z per head, all positions       rows: blocks, columns: heads
 *   headPosGrid attn.hook_z per head and position         rows: (block, head), columns: positions
 *
 * Directions: 'denoising' writes clean activations into the corrupted run; 'noising' writes
 * corrupted activations into the clean run. 'mean' ablation writes the mean over prompts (of
 * the clean run) into the clean run. Every score is normalised as
 * (patched − corrupted) / (clean − corrupted), so 1 is clean behaviour and 0 corrupted.
 *
 * Every cell runs through the suffix forward: cells are batched by position, and each reuses the
 * base run's keys and values before its position and its residuals below its layer.
 */
import { InputError } from '../errors.js';
import { hookPoint } from '../model/hooks.js';
import { type Batch, type Task, type TaskConfig, promptLayout, promptLength, renderTokens } from '../tasks/index.js';
import { CORRUPTIONS, type Corruption, type PromptPair, checkPromptPair, promptPairs } from './prompt-pairs.js';
import { checkRunsFit } from './guard.js';
import { argmax, softmaxAt, squaredError } from '../tasks/score.js';
import { analysisTasks } from './batches.js';
import { type Backend, type AnalysisRun, LAYER_CONVENTION, RangeInputError, type Site, type Variant, checkPosition, promptFeeds, range } from '../backend/backend.js';

export const DIRECTIONS = ['denoising', 'noising', 'mean'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export { CORRUPTIONS, type Corruption, type PromptPair, checkPromptPair, pairRecords, promptPairs, promptPairsFrom } from './prompt-pairs.js';

/** Scores of one run at the query, averaged over prompts. */
export interface Scores {
  /** (this − corrupted) / (clean − corrupted) of `logitDiff`. */
  readonly normalized: number;
  /** Tokens: mean logit(correct) − logit(wrong). Regression: −mean squared error against the clean target. */
  readonly logitDiff: number;
  /** Tokens only: argmax = the clean answer; and the softmax probability of the clean answer. */
  readonly accuracy: number | null;
  readonly pCorrect: number | null;
}

export interface PatchCell {
  readonly site: Site;
  readonly head?: number;
  /** Positions written; each cell writes the source run's value at each. */
  readonly positions: readonly number[];
}

/** Which run is patched and where its new values come from; the presets' directions name these. */
export interface SweepRuns {
  readonly base: 'clean' | 'corrupted';
  readonly source: 'clean' | 'corrupted' | 'mean';
}

export const DIRECTION_RUNS: Readonly<Record<Direction, SweepRuns>> = {
  denoising: { base: 'corrupted', source: 'clean' },
  noising: { base: 'clean', source: 'corrupted' },
  mean: { base: 'clean', source: 'mean' },
};

export interface SweepResult {
  readonly clean: Scores;
  readonly corrupted: Scores;
  readonly cells: readonly Scores[];
}

/**
 * The generic routine: for each cell, the base run with the source run's activations written at
 * the cell's site, head and positions, scored at the query. Output: the clean and corrupted
 * runs' scores and one Scores per cell, in the order of `cells`.
 */
export async function patchSweep<R extends AnalysisRun>(
  engine: Backend<R>,
  pair: PromptPair,
  cells: readonly PatchCell[],
  options: SweepRuns & { method?: 'fast' | 'naive'; onProgress?: (done: number, total: number) => void },
): Promise<SweepResult> {
  options.onProgress?.(0, cells.length); // before the clean and corrupted runs, which take a while on many prompts
  const needZ = cells.some((c) => c.site.kind === 'z');
  const cleanFeeds = promptFeeds(pair.clean);
  const corruptFeeds = promptFeeds(pair.corrupted);
  const cleanRun = await engine.base(cleanFeeds, { z: needZ });
  const corruptRun = await engine.base(corruptFeeds, { z: needZ });
  const baseIsClean = options.base === 'clean';
  const base = baseIsClean ? cleanRun : corruptRun;
  const source = options.source === 'mean' ? meanRun(cleanRun) : options.source === 'clean' ? cleanRun : corruptRun;
  const { dModel: D, heads } = engine.dims;
  const [H, T] = [heads ?? 0, base.seq];
  const dh = H ? D / H : 0; // no heads: resid cells only (the engine rejects z cells)

  const variants: Variant[] = cells.map((c) => {
    const width = c.site.kind === 'resid' ? D : c.head === undefined ? H * dh : dh;
    const src = c.site.kind === 'resid' ? source.resid[c.site.layer] : source.z![c.site.layer];
    const stride = c.site.kind === 'resid' ? D : H * dh;
    const offset = c.site.kind === 'z' && c.head !== undefined ? c.head * dh : 0;
    return [{ site: c.site, head: c.head, positions: c.positions, mode: 'replace', value: (n: number, i: number) => src.subarray((n * T + c.positions[i]) * stride + offset, (n * T + c.positions[i]) * stride + offset + width) }];
  });
  const outs =
    options.method === 'naive'
      ? await engine.patchedNaive(baseIsClean ? cleanFeeds : corruptFeeds, variants, options.onProgress)
      : await engine.patched(base, variants, options.onProgress);

  const wrong = pickWrong(pair, corruptRun.out, engine.outWidth);
  const raw = (out: Float32Array) => rawScores(pair, out, wrong, engine.outWidth);
  const clean = raw(cleanRun.out);
  const corrupted = raw(corruptRun.out);
  const normalise = (r: RawScores): Scores => ({ ...r, normalized: (r.logitDiff - corrupted.logitDiff) / (clean.logitDiff - corrupted.logitDiff) });
  return { clean: normalise(clean), corrupted: normalise(corrupted), cells: outs.map((o) => normalise(raw(o))) };
}

// ---- presets --------------------------------------------------------------------------------------

export const PATCH_SITES = ['resid_pre', 'resid_post', 'z', 'z_pos'] as const;
export type PatchSite = (typeof PATCH_SITES)[number];

export interface PatchOptions {
  /** Default 'resid_pre'. */
  readonly site?: PatchSite;
  /** Default 'denoising'. */
  readonly direction?: Direction;
  /** Default 'other-task'. */
  readonly corruption?: Corruption;
  /** Tasks of this split (default 'train'), or these tasks; at most maxTasks of them (default 8). */
  readonly split?: 'train' | 'heldout';
  readonly tasks?: readonly Task[];
  readonly maxTasks?: number;
  /** Prompt pairs per task. Default 16. */
  readonly prompts?: number;
  /** Demos per prompt. Default: the task config's demos.max. */
  readonly shots?: number;
  /** Blocks to patch. Default all. */
  readonly layers?: readonly number[];
  /** Positions to patch (resid and z_pos). Default all. */
  readonly positions?: readonly number[];
  readonly seed?: number;
  readonly method?: 'fast' | 'naive';
  /** Patch these prompt pairs instead of drawing them from the task config (see `promptPairsFrom`). */
  readonly pairs?: PromptPair;
  readonly onProgress?: (done: number, total: number) => void;
}

/** A preset's result: one matrix per score, rows × columns as `rows` and `columns` say. */
export interface PatchResult {
  readonly analysis: 'patch';
  readonly convention: string;
  readonly site: PatchSite;
  readonly hook: string;
  readonly direction: Direction;
  readonly directionNote: string;
  readonly corruption: Corruption | 'given';
  readonly options: Readonly<Record<string, unknown>>;
  /** Row labels: hook names (and heads). */
  readonly rows: readonly string[];
  /** Column labels: positions (with their role in the prompt) or heads. */
  readonly columns: readonly string[];
  readonly clean: Scores;
  readonly corrupted: Scores;
  readonly normalized: number[][];
  readonly logitDiff: number[][];
  readonly accuracy: (number | null)[][];
  readonly pCorrect: (number | null)[][];
  readonly cells: number;
  readonly ms: number;
}

const NOTES: Record<Direction, string> = {
  denoising: 'denoising: clean activations written into the corrupted run; 1 = the patch restores clean behaviour, 0 = no effect',
  noising: 'noising: corrupted activations written into the clean run; 1 = no effect, 0 = the patch breaks it as fully as the corruption',
  mean: 'mean ablation: the mean activation over the clean prompts written into the clean run; 1 = no effect, 0 = as broken as the corrupted run',
};

/** Runs a preset: the cells of `site` over the chosen blocks, positions and heads. */
export async function patch<R extends AnalysisRun>(engine: Backend<R>, cfg: TaskConfig | null, options: PatchOptions = {}): Promise<PatchResult> {
  const site = options.site ?? 'resid_pre';
  const direction = options.direction ?? 'denoising';
  const corruption = options.corruption ?? 'other-task';
  if (!PATCH_SITES.includes(site)) throw new InputError(`unknown site '${site}'. Should be one of: ${PATCH_SITES.join(', ')}`);
  if (!DIRECTIONS.includes(direction)) throw new InputError(`unknown direction '${direction}'. Should be one of: ${DIRECTIONS.join(', ')}`);
  if (!CORRUPTIONS.includes(corruption)) throw new InputError(`unknown corruption '${corruption}'. Should be one of: ${CORRUPTIONS.join(', ')}`);
  const seed = options.seed ?? 0;
  if (!options.pairs && !cfg) throw new InputError('patching needs a task config or given prompt pairs');
  const tasks = options.pairs ? [] : options.tasks ? [...options.tasks] : analysisTasks(cfg!, options.split ?? 'train', options.maxTasks ?? 8, seed);
  if (!options.pairs) {
    const count = { prompts: tasks.length * (options.prompts ?? 16), seq: promptLength(cfg!, options.shots ?? cfg!.demos.max), perBlock: 4, count: 2 };
    checkRunsFit(engine, 'activation patching', count, 'lower prompts or maxTasks'); // clean and corrupted runs: q, k, v (and z) per block
  }
  const pair = options.pairs ? checkPromptPair(options.pairs) : promptPairs(cfg!, tasks, { count: options.prompts ?? 16, shots: options.shots, corruption, seed });
  engine.checkSeq(pair.clean.seq);
  const L = engine.layers;
  const T = pair.clean.seq;
  const blocks = [...(options.layers ?? range(L))];
  // Rows are blocks whatever the site (its resid_pre, resid_post or attn.hook_z): say so, not one site's hook.
  for (const b of blocks) {
    if (!Number.isInteger(b) || b < 0 || b >= L) throw new RangeInputError(`block ${b} is out of range: this model has ${L} blocks, 0..${L - 1} (each row of a ${site} patch is one block)`);
  }
  const positions = [...(options.positions ?? range(T))];
  for (const p of positions) checkPosition(p, T);
  if ((site === 'z' || site === 'z_pos') && engine.dims.heads === null) {
    throw new InputError(`site '${site}' patches heads (attn.hook_z), which this model does not expose: head patching needs a tvlens checkpoint; patch resid_pre or resid_post instead`);
  }
  const heads = range(engine.dims.heads ?? 0);
  const labels = options.pairs ? pair.clean.kind === 'tokens' ? range(T).map((p) => `${p}(${(pair.clean as Batch & { kind: 'tokens' }).tokens[p]})`) : range(T).map(String) : positionLabels(cfg!, pair.clean);

  let cells: PatchCell[];
  let rows: string[];
  let columns: string[];
  if (site === 'resid_pre' || site === 'resid_post') {
    const layerOf = (b: number) => (site === 'resid_pre' ? b : b + 1);
    cells = blocks.flatMap((b) => positions.map((p) => ({ site: { kind: 'resid' as const, layer: layerOf(b) }, positions: [p] })));
    rows = blocks.map((b) => hookPoint(site === 'resid_pre' ? 'hook_resid_pre' : 'hook_resid_post', b).name);
    columns = positions.map((p) => labels[p]);
  } else if (site === 'z') {
    cells = blocks.flatMap((b) => heads.map((h) => ({ site: { kind: 'z' as const, layer: b }, head: h, positions: range(T) })));
    rows = blocks.map((b) => hookPoint('attn.hook_z', b).name);
    columns = heads.map((h) => `head ${h}`);
  } else {
    cells = blocks.flatMap((b) => heads.flatMap((h) => positions.map((p) => ({ site: { kind: 'z' as const, layer: b }, head: h, positions: [p] }))));
    rows = blocks.flatMap((b) => heads.map((h) => `${hookPoint('attn.hook_z', b).name}[head ${h}]`));
    columns = positions.map((p) => labels[p]);
  }
  const t0 = performance.now();
  const r = await patchSweep(engine, pair, cells, { ...DIRECTION_RUNS[direction], method: options.method, onProgress: options.onProgress });
  const ms = performance.now() - t0;
  const grid = <K extends keyof Scores>(k: K) => range(rows.length).map((i) => range(columns.length).map((j) => r.cells[i * columns.length + j][k]));
  return {
    analysis: 'patch',
    convention: `${LAYER_CONVENTION}; rows here are blocks by their hook names`,
    site,
    hook: site === 'resid_pre' ? 'blocks.{l}.hook_resid_pre' : site === 'resid_post' ? 'blocks.{l}.hook_resid_post' : 'blocks.{l}.attn.hook_z',
    direction,
    directionNote: NOTES[direction],
    corruption: pair.corruption,
    options: { tasks: tasks.map((t) => t.name), prompts: options.pairs ? pair.clean.batch : (options.prompts ?? 16), shots: pair.clean.demos, layers: blocks, positions, seed, method: options.method ?? 'fast' },
    rows,
    columns,
    clean: r.clean,
    corrupted: r.corrupted,
    normalized: grid('normalized'),
    logitDiff: grid('logitDiff'),
    accuracy: grid('accuracy'),
    pCorrect: grid('pCorrect'),
    cells: cells.length,
    ms,
  };
}

/** Each position's role: x, →, y or , with its demo index; the query's as x_q and →_q. */
export function positionLabels(cfg: TaskConfig, batch: Batch): string[] {
  const lay = promptLayout(cfg, batch.demos);
  const tokens = batch.kind === 'tokens' ? renderTokens(batch.tokens.subarray(0, batch.seq), cfg) : null;
  return range(batch.seq).map((p) => {
    const i = Math.floor(p / lay.block);
    const off = p % lay.block;
    const q = i === batch.demos ? 'q' : String(i);
    const role = off < lay.segment ? `x${q}${lay.segment > 1 ? `.${off}` : ''}` : off === lay.arrowAt ? `→${q}` : off === lay.yAt ? `y${q}` : `,${q}`;
    return tokens ? `${p}:${role}(${tokens[p]})` : `${p}:${role}`;
  });
}

// ---- scoring --------------------------------------------------------------------------------------

type RawScores = Omit<Scores, 'normalized'>;

/** Per prompt, the token the logit difference is taken against. */
function pickWrong(pair: PromptPair, corruptOut: Float32Array, O: number): number[] {
  return pair.correct.map((c, n) => {
    if (!Number.isNaN(pair.wrong[n]) || Number.isNaN(c)) return pair.wrong[n];
    // The corrupted run's favourite among the other tokens.
    const row = corruptOut.subarray(n * O, (n + 1) * O);
    let best = c === 0 ? 1 : 0;
    for (let j = 0; j < O; j++) if (j !== c && row[j] > row[best]) best = j;
    return best;
  });
}

function rawScores(pair: PromptPair, out: Float32Array, wrong: readonly number[], O: number): RawScores {
  const B = pair.clean.batch;
  let diff = 0;
  let right = 0;
  let p = 0;
  for (let n = 0; n < B; n++) {
    const row = out.subarray(n * O, (n + 1) * O);
    if (pair.clean.kind === 'tokens') {
      const c = pair.correct[n];
      diff += row[c] - row[wrong[n]];
      right += argmax(row) === c ? 1 : 0;
      p += softmaxAt(row, c);
    } else {
      const q = n * pair.clean.seq + pair.clean.queryPos[n];
      diff -= squaredError(row, pair.clean.targets, q * O).se;
    }
  }
  const tokens = pair.clean.kind === 'tokens';
  return { logitDiff: diff / B, accuracy: tokens ? right / B : null, pCorrect: tokens ? p / B : null };
}

/** A run whose every prompt holds the mean over prompts, position by position. */
function meanRun<R extends AnalysisRun>(run: R): R {
  const mean = (a: Float32Array) => {
    const per = a.length / run.batch;
    const m = new Float64Array(per);
    for (let n = 0; n < run.batch; n++) for (let i = 0; i < per; i++) m[i] += a[n * per + i];
    const out = new Float32Array(a.length);
    for (let n = 0; n < run.batch; n++) for (let i = 0; i < per; i++) out[n * per + i] = m[i] / run.batch;
    return out;
  };
  return { ...run, resid: run.resid.map(mean), z: run.z ? run.z.map(mean) : null };
}
