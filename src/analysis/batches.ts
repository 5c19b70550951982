/**
 * Prompt batches for the analyses: several tasks' prompts joined into one batch (one run instead
 * of one per task), demo prompts reused with other dummy queries, and the score of an output at
 * each prompt's query.
 */
import { InputError } from '../errors.js';
import { type Batch, type Task, type TaskConfig, promptLayout, taskList } from '../tasks/index.js';
import { SUITES } from '../tasks/suites.js';
import { argmax } from '../train/evaluate.js';
import { Rng } from '../util/rng.js';

/** Joins batches of one kind and length, in order. */
export function concatBatches(batches: readonly Batch[]): Batch {
  if (batches.length === 0) throw new InputError('no prompts to join');
  const [first] = batches;
  for (const b of batches) {
    if (b.kind !== first.kind || b.seq !== first.seq) throw new InputError(`cannot join prompts of ${b.seq} positions (${b.kind}) with prompts of ${first.seq} (${first.kind})`);
  }
  const cat = <T extends Float32Array | Int32Array | BigInt64Array>(pick: (b: Batch) => T): T => {
    const parts = batches.map(pick);
    const out = new (parts[0].constructor as new (n: number) => T)(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p as never, at);
      at += p.length;
    }
    return out;
  };
  const common = {
    batch: batches.reduce((n, b) => n + b.batch, 0),
    seq: first.seq,
    demos: first.demos,
    weights: cat((b) => b.weights),
    shots: cat((b) => b.shots),
    taskIds: cat((b) => b.taskIds),
    queryPos: cat((b) => b.queryPos),
    tasks: batches.flatMap((b) => b.tasks),
  };
  if (first.kind === 'tokens') {
    return { kind: 'tokens', ...common, tokens: cat((b) => (b as typeof first).tokens), targets: cat((b) => (b as typeof first).targets) };
  }
  return {
    kind: 'vectors',
    ...common,
    dIn: first.dIn,
    dOut: first.dOut,
    inputs: cat((b) => (b as typeof first).inputs),
    markers: cat((b) => (b as typeof first).markers),
    targets: cat((b) => (b as typeof first).targets),
  };
}

/**
 * Each prompt `copies` times: copy j keeps prompt b's demos and takes the query (its x and its
 * target) of prompt (b + j) mod B. With one task per batch, every copy is a valid prompt of it:
 * the same demo set read with other dummy queries, as Hendel et al. average over.
 */
export function withDummies(cfg: TaskConfig, batch: Batch, copies: number): Batch {
  if (!Number.isInteger(copies) || copies < 1) throw new InputError(`dummies must be an integer ≥ 1, got ${copies}`);
  if (copies === 1) return batch;
  const { batch: B, seq: T } = batch;
  const lay = promptLayout(cfg, batch.demos);
  const q = batch.queryPos[0];
  // The query block starts at demos·block; its x takes `segment` positions.
  const blockStart = batch.demos * lay.block;
  const order = Array.from({ length: B }, (_, b) => b);
  const parts: Batch[] = [];
  for (let j = 0; j < copies; j++) {
    const donor = (b: number) => (b + j) % B;
    if (batch.kind === 'tokens') {
      const tokens = batch.tokens.slice();
      const targets = batch.targets.slice();
      for (const b of order) {
        for (let s = 0; s < lay.segment; s++) tokens[b * T + blockStart + s] = batch.tokens[donor(b) * T + blockStart + s];
        targets[b * T + q] = batch.targets[donor(b) * T + q];
      }
      parts.push({ ...batch, tokens, targets });
    } else {
      const { dIn, dOut } = batch;
      const inputs = batch.inputs.slice();
      const targets = batch.targets.slice();
      for (const b of order) {
        for (let s = 0; s < lay.segment; s++) {
          const at = (b * T + blockStart + s) * dIn;
          inputs.set(batch.inputs.subarray((donor(b) * T + blockStart + s) * dIn, (donor(b) * T + blockStart + s + 1) * dIn), at);
        }
        targets.set(batch.targets.subarray((donor(b) * T + q) * dOut, (donor(b) * T + q + 1) * dOut), (b * T + q) * dOut);
      }
      parts.push({ ...batch, inputs, targets });
    }
  }
  return concatBatches(parts);
}

/** The score of each prompt's output at its query: 1/0 correct (tokens), or squared error and y² (vectors). */
export interface QueryScores {
  readonly metric: 'accuracy' | 'nmse';
  /** Per prompt: correct (0/1) or the squared error (mean over output dims). */
  readonly value: Float64Array;
  /** Per prompt: y² (mean over output dims), to normalise squared errors; 0 for tokens. */
  readonly y2: Float64Array;
}

/** Scores outputs [B, O] taken at each prompt's last position (its query). */
export function scoreQueries(batch: Batch, out: Float32Array): QueryScores {
  const B = batch.batch;
  const O = out.length / B;
  const value = new Float64Array(B);
  const y2 = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    const q = b * batch.seq + batch.queryPos[b];
    const row = out.subarray(b * O, (b + 1) * O);
    if (batch.kind === 'tokens') value[b] = argmax(row) === Number(batch.targets[q]) ? 1 : 0;
    else {
      let se = 0;
      let yy = 0;
      for (let j = 0; j < O; j++) {
        const y = batch.targets[q * batch.dOut + j];
        se += (row[j] - y) ** 2;
        yy += y * y;
      }
      value[b] = se / O;
      y2[b] = yy / O;
    }
  }
  return { metric: batch.kind === 'tokens' ? 'accuracy' : 'nmse', value, y2 };
}

/** The answer token of each prompt at its query, for logit differences. */
export function queryTargets(batch: Batch): number[] {
  return Array.from({ length: batch.batch }, (_, b) => (batch.kind === 'tokens' ? Number(batch.targets[b * batch.seq + batch.queryPos[b]]) : NaN));
}

/**
 * The tasks of a split. Kinds that draw a fresh task per training prompt have no train list: then
 * `count` tasks are drawn from the suite with `seed`, as stand-ins for the training distribution.
 */
export function analysisTasks(cfg: TaskConfig, split: 'train' | 'heldout', count: number | undefined, seed: number): Task[] {
  let tasks: Task[];
  try {
    tasks = [...taskList(cfg, split)];
  } catch (e) {
    const draw = SUITES[cfg.kind].draw;
    if (split !== 'train' || !draw) throw e;
    const rng = new Rng(seed ^ 0x5eed);
    tasks = Array.from({ length: count ?? 8 }, (_, i) => {
      const t = draw(cfg, rng, -1);
      return { ...t, name: `${t.name}#${i}` } as Task;
    });
  }
  if (tasks.length === 0) throw new InputError(`there are no ${split} tasks in this task config`);
  return count !== undefined ? tasks.slice(0, count) : tasks;
}
