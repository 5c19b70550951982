/**
 * Prompt layout and batch builders. One generic routine, `sampleBatch`, plus thin presets for
 * training, held-out evaluation, and analysis prompts of one given task.
 *
 * Layout, with m = positions per x (1 for function tasks, length-1 for hmm/dfa) and k demos:
 *
 *   triplet   x₁ → y₁ , x₂ → y₂ , … x_q →     block = m+3 positions: x at 0..m-1, → at m, y at m+1,
 *                                              , at m+2; the query block is x_q → (m+1 positions).
 *                                              Scored: every arrow (offset m), target = the y after it.
 *   pairwise  x₁ y₁ x₂ y₂ … x_q               block = m+1: x at 0..m-1, y at m; query block x_q (m).
 *                                              Scored: every last x (offset m-1), target = the y after it.
 *
 * So seq = k·(m+3) + m+1 (triplet) or k·(m+1) + m (pairwise), and the i-th scored position (i
 * demos seen before it) is i·block + offset; the last one is the query's (queryPos). Every prompt
 * in a batch has the same demo count, so there is no padding: when cfg.demos is a range, one count
 * is drawn per batch. Scoring every arrow already trains every shorter prefix, as in Garg et al.
 */
import { InputError } from '../errors.js';
import type { Rng } from '../util/rng.js';
import type { TaskConfig } from './config.js';
import { suiteFor, type Suite } from './suites.js';
import type { Batch, Example, OodOptions, Split, Task, TokenBatch, VectorBatch } from './types.js';
import { universe } from './universe.js';
import { MARKER, specialTokens, taskIO } from './vocab.js';

export interface PromptLayout {
  /** Positions per prompt. */
  seq: number;
  /** Positions per demo block. */
  block: number;
  /** Positions an x takes (m). */
  segment: number;
  /** Offsets within a block; -1 where the format has no such position. */
  arrowAt: number;
  yAt: number;
  sepAt: number;
  /** Offset within a block of the scored position (the arrow, or the last x). */
  scoreAt: number;
  /** Absolute scored positions, demos first, the query last; scored[i] has seen i demos. */
  scored: number[];
}

/** The length of a prompt with `demos` demos, without building its layout (cheap for any count, so checks can run first). */
export function promptLength(cfg: TaskConfig, demos: number): number {
  const m = suiteFor(cfg).segment(cfg);
  return cfg.format === 'triplet' ? demos * (m + 3) + m + 1 : demos * (m + 1) + m;
}

export function promptLayout(cfg: TaskConfig, demos: number): PromptLayout {
  const m = suiteFor(cfg).segment(cfg);
  const triplet = cfg.format === 'triplet';
  const block = triplet ? m + 3 : m + 1;
  const scoreAt = triplet ? m : m - 1;
  return {
    seq: demos * block + (triplet ? m + 1 : m),
    block,
    segment: m,
    arrowAt: triplet ? m : -1,
    yAt: triplet ? m + 1 : m,
    sepAt: triplet ? m + 2 : -1,
    scoreAt,
    scored: Array.from({ length: demos + 1 }, (_, i) => i * block + scoreAt),
  };
}

export interface BatchOptions {
  /** Which tasks to draw from. Default 'train'. */
  split?: Split;
  /** Draw only from these tasks (overrides split), e.g. one task for analysis prompts. */
  tasks?: readonly Task[];
  /** Demos per prompt. Default: drawn per batch, uniformly from cfg.demos. */
  demos?: number;
  /** Training step, for the linreg curriculum. Default: none (the curriculum's end dimension). */
  step?: number;
  /** OOD corruptions. Default: none. */
  ood?: OodOptions;
}

/**
 * A batch of prompts. Each prompt draws its task and its data from two generators forked off
 * `rng`, so prompt b gets the same query and the same first demos whatever the demo count, and
 * whether its task was drawn or given: k-shot and zero-shot prompts built from the same Rng state
 * share their queries. A task list is sampled family first, then task, so families weigh equally.
 */
export function sampleBatch(cfg: TaskConfig, rng: Rng, batchSize: number, opts: BatchOptions = {}): Batch {
  count(batchSize, 'batchSize', 1);
  const demos = opts.demos ?? cfg.demos.min + rng.int(cfg.demos.max - cfg.demos.min + 1);
  count(demos, 'demos', 0);
  const suite = suiteFor(cfg);
  const ood = checkOod(suite, opts.ood ?? {});
  const u = universe(cfg);
  const pool = opts.tasks ?? (opts.split === 'heldout' ? u.heldout : u.train);
  if (pool && pool.length === 0) throw new InputError(opts.tasks ? 'the task list is empty' : `there are no ${opts.split ?? 'train'} tasks (heldoutTasks: ${cfg.heldoutTasks})`);
  pool?.forEach((t) => suiteFor(cfg, t));
  const pick = pool && familyFirst(pool);

  const tasks: Task[] = [];
  const prompts: Example[][] = [];
  for (let b = 0; b < batchSize; b++) {
    const rTask = rng.fork();
    const rData = rng.fork();
    const task = pick ? pick(rTask) : drawFresh(cfg, suite, rTask, u.reserved);
    const [query, ...shown] = suite.examples(cfg, task, rData, demos + 1, opts.step, ood);
    corrupt(shown, rData, ood, cfg.vocab);
    tasks.push(task);
    prompts.push([...shown, query]);
  }
  const lay = promptLayout(cfg, demos);
  return suite.input === 'tokens' ? tokenBatch(cfg, lay, tasks, prompts) : vectorBatch(cfg, lay, tasks, prompts);
}

/** Training prompts: train tasks, demo count from cfg.demos unless given. */
export function sampleTrainBatch(cfg: TaskConfig, rng: Rng, batchSize: number, demos?: number, step?: number): Batch {
  return sampleBatch(cfg, rng, batchSize, { split: 'train', demos, step });
}

/** OOD prompts: held-out tasks, optionally with shifted queries or corrupted demos. */
export function sampleHeldoutBatch(cfg: TaskConfig, rng: Rng, batchSize: number, demos?: number, ood?: OodOptions): Batch {
  return sampleBatch(cfg, rng, batchSize, { split: 'heldout', demos, ood });
}

/**
 * `count` prompts of one task with `demos` demos and a query: the demo prompts whose last-arrow
 * state is a task vector (the query is then a dummy), or, with demos = 0, zero-shot prompts.
 */
export function taskPrompts(cfg: TaskConfig, task: Task, rng: Rng, count: number, demos: number, ood?: OodOptions): Batch {
  return sampleBatch(cfg, rng, count, { tasks: [task], demos, ood });
}

/**
 * A batch built from given examples: prompts[b] lists prompt b's demos in order and its query last
 * (every prompt the same length), with tasks[b] its task. For analyses that choose the examples
 * themselves (Hendel et al.'s dummy queries, which must differ from the test query).
 */
export function examplesBatch(cfg: TaskConfig, tasks: readonly Task[], prompts: readonly Example[][]): Batch {
  if (prompts.length === 0 || prompts.length !== tasks.length) throw new InputError(`examplesBatch needs one task per prompt, got ${tasks.length} tasks for ${prompts.length} prompts`);
  const demos = prompts[0].length - 1;
  if (demos < 0 || prompts.some((p) => p.length !== demos + 1)) throw new InputError('examplesBatch: every prompt needs the same number of examples, at least the query');
  tasks.forEach((t) => suiteFor(cfg, t));
  const lay = promptLayout(cfg, demos);
  const copies = prompts.map((p) => p.map((ex) => ({ x: [...ex.x], y: ex.y })));
  return suiteFor(cfg).input === 'tokens' ? tokenBatch(cfg, lay, [...tasks], copies) : vectorBatch(cfg, lay, [...tasks], copies);
}

/** Zero-shot prompts `x_q →` (triplet) or `x_q` (pairwise) of one task: where a task vector is patched in. */
export function zeroShotPrompts(cfg: TaskConfig, task: Task, rng: Rng, count: number): Batch {
  return taskPrompts(cfg, task, rng, count, 0);
}

function tokenBatch(cfg: TaskConfig, lay: PromptLayout, tasks: Task[], prompts: Example[][]): TokenBatch {
  const { arrow, sep } = specialTokens(cfg);
  const B = prompts.length;
  const T = lay.seq;
  const out: TokenBatch = { kind: 'tokens', ...common(lay, tasks), tokens: new BigInt64Array(B * T), targets: new BigInt64Array(B * T) };
  prompts.forEach((prompt, b) =>
    prompt.forEach((ex, i) => {
      const at = b * T + i * lay.block; // start of this example's block
      ex.x.forEach((v, s) => (out.tokens[at + s] = BigInt(v)));
      if (lay.arrowAt >= 0) out.tokens[at + lay.arrowAt] = BigInt(arrow);
      if (i < prompt.length - 1) {
        out.tokens[at + lay.yAt] = BigInt(ex.y);
        if (lay.sepAt >= 0) out.tokens[at + lay.sepAt] = BigInt(sep);
      }
      out.targets[at + lay.scoreAt] = BigInt(ex.y);
      score(out, at + lay.scoreAt, i);
    }),
  );
  return out;
}

function vectorBatch(cfg: TaskConfig, lay: PromptLayout, tasks: Task[], prompts: Example[][]): VectorBatch {
  const io = taskIO(cfg);
  const dIn = io.input === 'vectors' ? io.dIn : 0;
  const B = prompts.length;
  const T = lay.seq;
  const out: VectorBatch = {
    kind: 'vectors',
    ...common(lay, tasks),
    dIn,
    dOut: 1,
    inputs: new Float32Array(B * T * dIn),
    markers: new BigInt64Array(B * T),
    targets: new Float32Array(B * T),
  };
  prompts.forEach((prompt, b) =>
    prompt.forEach((ex, i) => {
      const at = b * T + i * lay.block; // start of this example's block; m = 1 for vectors
      out.inputs.set(ex.x, at * dIn); // [x, 0, …]
      if (lay.arrowAt >= 0) out.markers[at + lay.arrowAt] = BigInt(MARKER.arrow);
      if (i < prompt.length - 1) {
        out.inputs[(at + lay.yAt) * dIn] = ex.y; // [y, 0, …]
        if (lay.sepAt >= 0) out.markers[at + lay.sepAt] = BigInt(MARKER.sep);
      }
      out.targets[at + lay.scoreAt] = ex.y; // dOut = 1
      score(out, at + lay.scoreAt, i);
    }),
  );
  return out;
}

function common(lay: PromptLayout, tasks: Task[]) {
  const B = tasks.length;
  return {
    batch: B,
    seq: lay.seq,
    demos: lay.scored.length - 1,
    weights: new Float32Array(B * lay.seq),
    shots: new Int32Array(B * lay.seq).fill(-1),
    taskIds: Int32Array.from(tasks, (t) => t.id),
    queryPos: new Int32Array(B).fill(lay.scored[lay.scored.length - 1]),
    segment: lay.segment,
    xOffset: lay.scoreAt,
    tasks,
  };
}

function score(out: Batch, pos: number, shots: number): void {
  out.weights[pos] = 1;
  out.shots[pos] = shots;
}

/** Picks a family uniformly, then a task of it uniformly. */
function familyFirst(pool: readonly Task[]): (rng: Rng) => Task {
  const groups = new Map<string, Task[]>();
  for (const t of pool) groups.set(t.family, [...(groups.get(t.family) ?? []), t]);
  const lists = [...groups.values()];
  return (rng) => rng.pick(rng.pick(lists));
}

function drawFresh(cfg: TaskConfig, suite: Suite, rng: Rng, reserved: ReadonlySet<string>): Task {
  for (;;) {
    const t = suite.draw!(cfg, rng, -1);
    if (!suite.key || !reserved.has(suite.key(t))) return t;
  }
}

/** Corrupts the demos only; the query and its target stay clean. Draws come after the clean data. */
function corrupt(demos: Example[], rng: Rng, ood: OodOptions, vocab: number): void {
  if (ood.shuffleLabels) {
    const ys = rng.permutation(demos.length).map((i) => demos[i].y);
    demos.forEach((ex, i) => (ex.y = ys[i]));
  }
  const flip = ood.demoLabelFlip ?? 0;
  if (flip > 0) for (const ex of demos) if (rng.uniform() < flip) ex.y = rng.int(vocab);
  const noise = ood.demoLabelNoise ?? 0;
  if (noise > 0) for (const ex of demos) ex.y += noise * rng.normal();
}

function checkOod(suite: Suite, ood: OodOptions): OodOptions {
  const vectorOnly = (['queryScale', 'queryShift', 'demoLabelNoise'] as const).filter((k) => ood[k] !== undefined);
  if (suite.input === 'tokens' && vectorOnly.length) throw new InputError(`ood.${vectorOnly[0]} applies to regression tasks only; token tasks take demoLabelFlip and shuffleLabels`);
  if (suite.input === 'vectors' && ood.demoLabelFlip !== undefined) throw new InputError('ood.demoLabelFlip applies to token tasks only; regression takes demoLabelNoise');
  for (const k of ['queryScale', 'queryShift', 'demoLabelNoise', 'demoLabelFlip'] as const) {
    const v = ood[k];
    if (v !== undefined && !Number.isFinite(v)) throw new InputError(`ood.${k} must be a finite number, got ${v}`);
  }
  if ((ood.demoLabelNoise ?? 0) < 0) throw new InputError(`ood.demoLabelNoise must be ≥ 0, got ${ood.demoLabelNoise}`);
  const flip = ood.demoLabelFlip ?? 0;
  if (flip < 0 || flip > 1) throw new InputError(`ood.demoLabelFlip is a probability in [0, 1], got ${flip}`);
  return ood;
}

function count(v: number, name: string, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new InputError(`${name} must be an integer ≥ ${min}, got ${v}`);
}

/**
 * `train.lmLoss`: inside every x of a token prompt (the demos' and the query's), each symbol after
 * the first becomes the target of the position before it, weighted like an answer (next-symbol
 * prediction, as GINC's and RegBench's language models are trained). Vector batches are unchanged.
 */
export function addSymbolTargets(cfg: TaskConfig, batch: Batch): void {
  if (batch.kind !== 'tokens') return;
  const { scored: answers } = promptLayout(cfg, batch.demos);
  for (let b = 0; b < batch.batch; b++) {
    for (const scored of answers) {
      const xStart = b * batch.seq + scored - batch.xOffset;
      for (let s = 0; s < batch.segment - 1; s++) {
        batch.targets[xStart + s] = batch.tokens[xStart + s + 1];
        batch.weights[xStart + s] = 1;
      }
    }
  }
}
