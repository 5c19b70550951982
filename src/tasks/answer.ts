/** The label a task gives an input, for every task that is a function of x. */
import { InputError } from '../errors.js';
import { applyDiscrete } from './discrete.js';
import { applyLinreg, applySine } from './regression.js';
import type { Task } from './types.js';

/**
 * f(x) for function tasks: x is a symbol id (discrete), a vector (linreg) or a number or 1-vector
 * (sine). HMM and DFA tasks are not functions of x: use hmmNextDistribution or dfaAllowedNext.
 */
export function answer(task: Task, x: number | readonly number[]): number {
  const scalar = () => {
    if (typeof x === 'number') return x;
    if (x.length !== 1) throw new InputError(`task '${task.name}' takes one number, got a vector of length ${x.length}`);
    return x[0];
  };
  switch (task.family) {
    case 'offset':
    case 'multiply':
    case 'permutation':
      return applyDiscrete(task, scalar());
    case 'sine':
      return applySine(task, scalar());
    case 'linreg': {
      const v = typeof x === 'number' ? [x] : x;
      if (v.length !== task.params.w.length) throw new InputError(`task '${task.name}' takes a vector of length ${task.params.w.length}, got ${v.length}`);
      return applyLinreg(task, v);
    }
    case 'hmm':
    case 'dfa':
      throw new InputError(`task '${task.name}' is a sequence task, not a function of x: use ${task.family === 'hmm' ? 'hmmNextDistribution' : 'dfaAllowedNext'}`);
  }
}
