/**
 * The prompts of a task-vector search, drawn from a task config or given as prompt records, and
 * back to records (a prompts file that reproduces a --task search).
 */
import { InputError } from '../errors.js';
import { type Batch, type Task, type TaskConfig, concatBatches, taskPrompts } from '../tasks/index.js';
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

type DrawOptions = { prompts?: number; dummies?: number; shots?: number; queries?: number; offset?: number; seed?: number };

/** The prompts a search draws from a task config: what `tvSearch` runs on without `given`. */
export function searchPromptsFor(cfg: TaskConfig, tasks: readonly Task[], options: DrawOptions = {}): SearchPrompts {
  const steps = drawSteps(cfg, tasks, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * `searchPromptsFor`, yielding to the event loop between chunks of prompts and reporting how many are
 * drawn (when there is more than one chunk): 100 000 prompts a task took 16 s of drawing, during which SIGTERM and progress waited.
 */
export async function drawSearchPrompts(cfg: TaskConfig, tasks: readonly Task[], options: DrawOptions = {}, onProgress?: (done: number, total: number) => void): Promise<SearchPrompts> {
  const steps = drawSteps(cfg, tasks, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (r.value.total > DRAW_CHUNK) onProgress?.(r.value.done, r.value.total); // a draw of one chunk takes moments: no bar
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Prompts drawn between two yields of a long draw. */
const DRAW_CHUNK = 2048;

/**
 * The draw, one chunk of one task's prompts per step. Drawing a task's prompts in chunks from one
 * RNG gives the prompts one call would (`sampleBatch` takes nothing from it but per prompt).
 */
function* drawSteps(cfg: TaskConfig, tasks: readonly Task[], options: DrawOptions): Generator<{ done: number; total: number }, SearchPrompts> {
  const o = { ...SEARCH_PROMPT_DEFAULTS, ...stripUndefined(options) };
  const shots = options.shots ?? cfg.demos.max;
  const rng = new Rng(o.seed);
  const demoRng = rng.fork();
  const zsRng = rng.fork();
  const total = tasks.length * (o.prompts + o.queries);
  let done = 0;
  function* draw(task: Task, r: Rng, count: number, demos: number): Generator<{ done: number; total: number }, Batch> {
    const parts: Batch[] = [];
    for (let n0 = 0; n0 < count; n0 += DRAW_CHUNK) {
      const n = Math.min(DRAW_CHUNK, count - n0);
      parts.push(taskPrompts(cfg, task, r, n, demos));
      done += n;
      yield { done, total };
    }
    return parts.length === 1 ? parts[0] : concatBatches(parts);
  }
  const demoParts: Batch[] = [];
  for (const t of tasks) demoParts.push(withDummies(cfg, yield* draw(t, demoRng.fork(), o.prompts, shots), o.dummies));
  const demos = concatBatches(demoParts);
  const demoPosition = demos.seq - 1 + o.offset;
  if (demoPosition < 0) throw new InputError(`offset ${o.offset} reaches before the start of the ${demos.seq}-position demo prompts`);
  const zsParts: Batch[] = [];
  for (const t of tasks) zsParts.push(yield* draw(t, zsRng.fork(), o.queries, 0));
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
