/**
 * The prompt pairs of activation patching: clean prompts and corrupted twins that share their xs
 * and query and differ only in the demos' labels, with each prompt's two answers; drawn from a
 * task config, read from prompt records, or given through the library (and then checked).
 */
import { InputError } from '../errors.js';
import { type Batch, type Task, type TaskConfig, concatBatches, taskPrompts } from '../tasks/index.js';
import { type PromptRecord, recordsToBatch } from '../tasks/prompt-file.js';
import { queryTargets } from '../tasks/score.js';
import { Rng } from '../util/rng.js';

export const CORRUPTIONS = ['other-task', 'shuffled-labels'] as const;
export type Corruption = (typeof CORRUPTIONS)[number];

/** Clean and corrupted prompts, aligned position by position, with each prompt's two answers. */
export interface PromptPair {
  readonly clean: Batch;
  readonly corrupted: Batch;
  /** The clean answer token (NaN for regression). */
  readonly correct: readonly number[];
  /** The other task's answer, where there is one and it differs (else NaN: decided from the run). */
  readonly wrong: readonly number[];
  /** How the corrupted prompts were made; 'given' for prompts from a file. */
  readonly corruption: Corruption | 'given';
}

/**
 * A pair given through the library, checked: clean and corrupted prompts of one shape, an answer
 * per prompt. `wrong` may be left out (each is then decided from the corrupted run).
 */
export function checkPromptPair(pair: PromptPair): PromptPair {
  const { clean, corrupted } = pair as Partial<PromptPair>;
  const isBatch = (b: unknown): b is Batch => typeof b === 'object' && b !== null && Number.isInteger((b as Batch).batch) && Number.isInteger((b as Batch).seq);
  if (!isBatch(clean) || !isBatch(corrupted)) throw new InputError('a prompt pair needs clean and corrupted prompt batches (as sampleBatch or a prompts file gives them)');
  if (clean.batch !== corrupted.batch || clean.seq !== corrupted.seq || clean.kind !== corrupted.kind) {
    throw new InputError(`clean and corrupted prompts must align position by position: clean is ${clean.batch} prompts × ${clean.seq} positions, corrupted ${corrupted.batch} × ${corrupted.seq}`);
  }
  const answers = (name: 'correct' | 'wrong', list: unknown) => {
    if (!Array.isArray(list) || list.length !== clean.batch || !list.every((v) => typeof v === 'number')) {
      throw new InputError(`a prompt pair's '${name}' must list one number per prompt (${clean.batch})`);
    }
    return list as number[];
  };
  return {
    clean,
    corrupted,
    correct: answers('correct', pair.correct),
    wrong: pair.wrong === undefined ? new Array<number>(clean.batch).fill(NaN) : answers('wrong', pair.wrong),
    corruption: pair.corruption ?? 'given',
  };
}

/**
 * Prompt pairs from prompt records (a prompts file): each record's `tokens` is the clean prompt,
 * `corrupted` its corrupted twin, `answer` the clean answer and `wrong` (optional) the token the
 * logit difference is taken against. All pairs share one length.
 */
export function promptPairsFrom(records: readonly PromptRecord[]): PromptPair {
  records.forEach((r, i) => {
    if (!r.corrupted) throw new InputError(`prompt ${i + 1} has no 'corrupted' twin: patching needs clean/corrupted pairs`);
    if (r.answer === undefined) throw new InputError(`prompt ${i + 1} has no 'answer': patching scores the clean answer's logit`);
  });
  return {
    clean: recordsToBatch(records, 'prompt pairs'),
    corrupted: recordsToBatch(records, 'prompt pairs', (r) => r.corrupted!),
    correct: records.map((r) => r.answer!),
    wrong: records.map((r) => (r.wrong === undefined || r.wrong === r.answer ? NaN : r.wrong)),
    corruption: 'given',
  };
}

/**
 * `count` prompt pairs per task, drawn from the same Rng states, so clean and corrupted prompts
 * share their xs and query. 'other-task' gives the demos the labels of another task of the list
 * (the next one); 'shuffled-labels' permutes the demos' labels.
 */
export function promptPairs(cfg: TaskConfig, tasks: readonly Task[], options: { count: number; shots?: number; corruption: Corruption; seed: number }): PromptPair {
  if (options.corruption === 'other-task' && tasks.length < 2) throw new InputError("the 'other-task' corruption needs at least two tasks");
  const shots = options.shots ?? cfg.demos.max;
  if (shots < 1) throw new InputError('patching needs prompts with at least one demo to corrupt');
  const rng = new Rng(options.seed);
  const clean: Batch[] = [];
  const corrupted: Batch[] = [];
  tasks.forEach((task, t) => {
    const state = rng.fork().state();
    clean.push(taskPrompts(cfg, task, new Rng(state), options.count, shots));
    corrupted.push(
      options.corruption === 'other-task'
        ? taskPrompts(cfg, tasks[(t + 1) % tasks.length], new Rng(state), options.count, shots)
        : taskPrompts(cfg, task, new Rng(state), options.count, shots, { shuffleLabels: true }),
    );
  });
  const c = concatBatches(clean);
  const x = concatBatches(corrupted);
  const correct = queryTargets(c);
  // The corrupted prompt's own target is the other task's answer to the same query.
  const other = options.corruption === 'other-task' ? queryTargets(x) : correct.map(() => NaN);
  return { clean: c, corrupted: x, correct, wrong: other.map((w, i) => (w === correct[i] ? NaN : w)), corruption: options.corruption };
}

/** A pair's prompts as prompt records (to write a prompts file that reproduces a task's pairs). */
export function pairRecords(pair: PromptPair): PromptRecord[] {
  const [c, x] = [pair.clean, pair.corrupted];
  if (c.kind !== 'tokens' || x.kind !== 'tokens') throw new InputError('prompts files hold token prompts; these are vectors');
  const row = (b: typeof c, n: number) => Array.from(b.tokens.subarray(n * b.seq, (n + 1) * b.seq), Number);
  return Array.from({ length: c.batch }, (_, n) => ({
    tokens: row(c, n),
    corrupted: row(x, n),
    position: c.queryPos[n] - c.seq,
    answer: pair.correct[n],
    ...(Number.isNaN(pair.wrong[n]) ? {} : { wrong: pair.wrong[n] }),
  }));
}
