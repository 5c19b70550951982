/**
 * One entry per task kind: whether its prompts are tokens or vectors, how many positions an x
 * takes, how to draw a fresh task, and how to draw examples of a task. The batch builder in
 * prompts.ts is the same for every kind.
 */
import { InputError } from '../errors.js';
import type { Rng } from '../util/rng.js';
import type { TaskConfig, TaskKind } from './config.js';
import { dfaExamples, dfaKey, drawDfa } from './dfa.js';
import { discreteExamples } from './discrete.js';
import { drawHmm, hmmExamples } from './hmm.js';
import { drawLinreg, drawSine, linregExamples, sineExamples } from './regression.js';
import type { DfaTask, DiscreteTask, Example, Family, HmmTask, LinregTask, OodOptions, SineTask, Task } from './types.js';

export interface Suite {
  input: 'tokens' | 'vectors';
  families: readonly Family[];
  /** Positions an x takes in a prompt. */
  segment(cfg: TaskConfig): number;
  /** A fresh task; absent where the universe is finite (discrete functions). */
  draw?(cfg: TaskConfig, rng: Rng, id: number): Task;
  /** Identifies a task where two independent draws can coincide, to keep held-out tasks out of training. */
  key?(task: Task): string;
  /** n examples of `task`; the first is the query, the rest are the demos in prompt order. */
  examples(cfg: TaskConfig, task: Task, rng: Rng, n: number, step: number | undefined, ood: OodOptions): Example[];
}

export const SUITES: Readonly<Record<TaskKind, Suite>> = Object.freeze({
  discrete: {
    input: 'tokens',
    families: ['offset', 'permutation', 'multiply'],
    segment: () => 1,
    examples: (cfg, task, rng, n) => discreteExamples(cfg, task as DiscreteTask, rng, n),
  },
  linreg: {
    input: 'vectors',
    families: ['linreg'],
    segment: () => 1,
    draw: drawLinreg,
    examples: (cfg, task, rng, n, step, ood) => linregExamples(cfg, task as LinregTask, rng, n, step, ood),
  },
  sine: {
    input: 'vectors',
    families: ['sine'],
    segment: () => 1,
    draw: drawSine,
    examples: (cfg, task, rng, n, _step, ood) => sineExamples(cfg, task as SineTask, rng, n, ood),
  },
  hmm: {
    input: 'tokens',
    families: ['hmm'],
    segment: (cfg) => cfg.hmm.length - 1,
    draw: drawHmm,
    examples: (cfg, task, rng, n) => hmmExamples(cfg, task as HmmTask, rng, n),
  },
  dfa: {
    input: 'tokens',
    families: ['dfa'],
    segment: (cfg) => cfg.dfa.length - 1,
    draw: drawDfa,
    key: (task) => dfaKey(task as DfaTask),
    examples: (cfg, task, rng, n) => dfaExamples(cfg, task as DfaTask, rng, n),
  },
});

/** The suite for cfg.kind, after checking that `task` (if given) belongs to it. */
export function suiteFor(cfg: TaskConfig, task?: Task): Suite {
  const suite = SUITES[cfg.kind];
  if (task && !suite.families.includes(task.family)) {
    throw new InputError(`task '${task.name}' (family ${task.family}) does not belong to kind '${cfg.kind}'. Should be one of: ${suite.families.join(', ')}`);
  }
  if (task) {
    const size = task.family === 'linreg' ? task.params.w.length : task.family === 'permutation' ? task.params.perm.length : 'vocab' in task.params ? task.params.vocab : undefined;
    const want = task.family === 'linreg' ? cfg.linreg.dIn : cfg.vocab;
    if (size !== undefined && size !== want) {
      throw new InputError(`task '${task.name}' is for ${task.family === 'linreg' ? 'dIn' : 'vocab'} = ${size}, but the config has ${want}`);
    }
  }
  return suite;
}
