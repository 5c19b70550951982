/**
 * Prompt batches for the analyses: demo prompts reused with other dummy queries, and the tasks of
 * a split. Joining batches (`concatBatches`) and scoring (`scoreQueries`) live in tasks/.
 */
import { InputError } from '../errors.js';
import { type Batch, type Task, type TaskConfig, concatBatches, promptLayout, taskList } from '../tasks/index.js';
import { SUITES } from '../tasks/suites.js';
import { Rng } from '../util/rng.js';

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
