/**
 * The prompts of a task-vector search, drawn from a task config or given as prompt records, and
 * back to records (a prompts file that reproduces a --task search).
 */
import { InputError } from '../errors.js';
import { type Batch, type Task, type TaskConfig, concatBatches, taskPrompts, zeroShotPrompts } from '../tasks/index.js';
import { type PromptRecord, positionOf, recordsToBatch } from '../tasks/prompt-file.js';
import { Rng } from '../util/rng.js';
import { withDummies } from './batches.js';

/** Demo prompts per task, dummy queries per demo prompt, zero-shot queries per task, offset from the last position, seed. */
export const SEARCH_PROMPT_DEFAULTS = { prompts: 16, dummies: 1, queries: 64, offset: 0, seed: 0 };

/** A task as results name it. */
export interface TaskRef {
  readonly id: number;
  readonly name: string;
  readonly family: string;
}

/**
 * The prompts of a search: demo prompts θ is read from, zero-shot prompts θ is written into and
 * scored at their last position. Drawn from a task config (`searchPromptsFor`) or given
 * (`searchPromptsFrom` a prompts file).
 */
export interface SearchPrompts {
  readonly tasks: readonly TaskRef[];
  /** Every task's demo prompts, and the task (index into `tasks`) of each. */
  readonly demos: Batch;
  readonly demoTask: Int32Array;
  /** Where θ is read in the demo prompts. */
  readonly demoPosition: number;
  /** Whether the demo prompts carry answers (the k-shot ICL score needs them). */
  readonly demoAnswers: boolean;
  /** Every task's zero-shot prompts, and the task of each; a task's first half is dev, the rest test. */
  readonly queries: Batch;
  readonly queryTask: Int32Array;
  /** Where θ is written in the zero-shot prompts. */
  readonly queryPosition: number;
}

/** Each prompt's part (task) index, for batches joined in order. */
export function taskIndex(parts: readonly Batch[]): Int32Array {
  const task = new Int32Array(parts.reduce((n, p) => n + p.batch, 0));
  let at = 0;
  parts.forEach((p, t) => task.fill(t, at, (at += p.batch)));
  return task;
}

/** The prompts a search draws from a task config: what `tvSearch` runs on without `given`. */
export function searchPromptsFor(
  cfg: TaskConfig,
  tasks: readonly Task[],
  options: { prompts?: number; dummies?: number; shots?: number; queries?: number; offset?: number; seed?: number } = {},
): SearchPrompts {
  const o = { ...SEARCH_PROMPT_DEFAULTS, ...stripUndefined(options) };
  const shots = options.shots ?? cfg.demos.max;
  const rng = new Rng(o.seed);
  const demoRng = rng.fork();
  const zsRng = rng.fork();
  const demoParts = tasks.map((t) => withDummies(cfg, taskPrompts(cfg, t, demoRng.fork(), o.prompts, shots), o.dummies));
  const demos = concatBatches(demoParts);
  const demoPosition = demos.seq - 1 + o.offset;
  if (demoPosition < 0) throw new InputError(`offset ${o.offset} reaches before the start of the ${demos.seq}-position demo prompts`);
  const zsParts = tasks.map((t) => zeroShotPrompts(cfg, t, zsRng.fork(), o.queries));
  const queries = concatBatches(zsParts);
  const queryPosition = queries.seq - 1 + o.offset;
  if (queryPosition < 0) throw new InputError(`offset ${o.offset} reaches before the start of the ${queries.seq}-position zero-shot prompts (valid: ${-(queries.seq - 1)}..0)`);
  const refs = tasks.map((t) => ({ id: t.id, name: t.name, family: t.family }));
  return { tasks: refs, demos, demoTask: taskIndex(demoParts), demoPosition, demoAnswers: true, queries, queryTask: taskIndex(zsParts), queryPosition };
}

/**
 * The prompts of a search from prompt records (a prompts file): role "demo" lines make θ, role
 * "query" lines are the zero-shot prompts, grouped by task in order of first appearance. Demo
 * prompts share one length and position, and so do the zero-shot prompts.
 */
export function searchPromptsFrom(records: readonly PromptRecord[]): SearchPrompts {
  const demos = records.filter((r) => r.role === 'demo');
  const queries = records.filter((r) => (r.role ?? 'query') === 'query');
  if (demos.length === 0) throw new InputError('a task-vector search needs demo prompts (role "demo") to read θ from');
  if (queries.length === 0) throw new InputError('a task-vector search needs zero-shot prompts (role "query") to write θ into');
  const names = [...new Set(records.map((r) => r.task ?? 'prompts'))];
  for (const name of names) {
    const q = queries.filter((r) => (r.task ?? 'prompts') === name);
    if (q.length < 2) throw new InputError(`task '${name}' has ${q.length} zero-shot prompts; each task needs at least 2 (half dev, half test)`);
    if (q.some((r) => r.answer === undefined)) throw new InputError(`task '${name}' has a zero-shot prompt without an answer: the search scores every zero-shot prompt`);
  }
  const onePosition = (rs: readonly PromptRecord[], what: string) => {
    const ps = new Set(rs.map(positionOf));
    if (ps.size > 1) throw new InputError(`${what} are read or written at one position; these use ${[...ps].join(', ')}`);
    return [...ps][0];
  };
  const taskOf = (rs: readonly PromptRecord[]) => Int32Array.from(rs, (r) => names.indexOf(r.task ?? 'prompts'));
  return {
    tasks: names.map((name, id) => ({ id, name, family: 'given' })),
    demos: recordsToBatch(demos, 'demo prompts'),
    demoTask: taskOf(demos),
    demoPosition: onePosition(demos, 'demo prompts'),
    demoAnswers: demos.every((r) => r.answer !== undefined),
    queries: recordsToBatch(queries, 'zero-shot prompts'),
    queryTask: taskOf(queries),
    queryPosition: onePosition(queries, 'zero-shot prompts'),
  };
}

/** The records of a search's prompts (to write a prompts file that reproduces a --task search). */
export function searchPromptRecords(p: SearchPrompts): PromptRecord[] {
  if (p.demos.kind !== 'tokens' || p.queries.kind !== 'tokens') throw new InputError('prompts files hold token prompts; these are vectors');
  const rows = (b: Batch & { kind: 'tokens' }, task: Int32Array, role: 'demo' | 'query', position: number) =>
    Array.from({ length: b.batch }, (_, n) => ({
      tokens: Array.from(b.tokens.subarray(n * b.seq, (n + 1) * b.seq), Number),
      task: p.tasks[task[n]].name,
      role,
      position: position - b.seq,
      answer: Number(b.targets[n * b.seq + b.queryPos[n]]),
    }));
  return [...rows(p.demos, p.demoTask, 'demo', p.demoPosition), ...rows(p.queries, p.queryTask, 'query', p.queryPosition)];
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
