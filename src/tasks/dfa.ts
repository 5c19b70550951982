/**
 * RegBench-style tasks (Akyürek et al. 2024): each task is a random DFA over a random subset of
 * the V symbols. Each state allows `dfa.edges` symbols, each leading to a random state, so a walk
 * never gets stuck. An example is a walk of `dfa.length` symbols from state 0, choosing uniformly
 * among allowed symbols; its first length-1 symbols are x and its last is y. Several symbols are
 * usually valid next, so score a prediction by `dfaAllowedNext`, as RegBench does. With
 * `dfa.markov` each symbol leads to its own state, so the last symbol is the state (and with
 * `dfa.doublyStochastic` each symbol has as many predecessors as successors).
 */
import type { Rng } from '../util/rng.js';
import type { TaskConfig } from './config.js';
import type { DfaTask, Example } from './types.js';

export function drawDfa(cfg: TaskConfig, rng: Rng, id: number): DfaTask {
  const { states, alphabet: A, edges, markov, doublyStochastic } = cfg.dfa;
  const alphabet = rng
    .permutation(cfg.vocab)
    .slice(0, A)
    .sort((a, b) => a - b);
  // The symbols state s allows. Doubly stochastic: σ(τ(s) + c) for each of `edges` shifts c; as τ
  // is a bijection, every symbol is also reached from exactly `edges` states.
  const [tau, sigma, shifts] = doublyStochastic ? [rng.permutation(A), rng.permutation(A), rng.permutation(A).slice(0, edges)] : [];
  const allowed = (s: number) => (shifts ? shifts.map((c) => sigma![(tau![s] + c) % A]) : rng.permutation(A).slice(0, edges));
  const next = Array.from({ length: states }, (_, s) => {
    const row = new Array<number>(A).fill(-1);
    for (const j of allowed(s)) row[j] = markov ? j : rng.int(states); // a Markov DFA's symbol j leads to state j
    return row;
  });
  return { id, family: 'dfa', name: id < 0 ? 'dfa' : `dfa#${id}`, params: { alphabet, next } };
}

/** n examples, each an independent walk from the start state; the first is the query. */
export function dfaExamples(cfg: TaskConfig, task: DfaTask, rng: Rng, n: number): Example[] {
  const { alphabet, next } = task.params;
  const out: Example[] = [];
  for (let i = 0; i < n; i++) {
    let s = 0;
    const seq: number[] = [];
    for (let t = 0; t < cfg.dfa.length; t++) {
      const allowed = next[s].flatMap((to, j) => (to >= 0 ? [j] : []));
      const j = allowed[rng.int(allowed.length)];
      seq.push(alphabet[j]);
      s = next[s][j];
    }
    out.push({ x: seq.slice(0, -1), y: seq[seq.length - 1] });
  }
  return out;
}

/** The symbols the DFA allows after `prefix`; empty when the prefix itself is not allowed. */
export function dfaAllowedNext(task: DfaTask, prefix: readonly number[]): number[] {
  const { alphabet, next } = task.params;
  let s = 0;
  for (const sym of prefix) {
    const j = alphabet.indexOf(sym);
    s = j < 0 ? -1 : next[s][j];
    if (s < 0) return [];
  }
  return next[s].flatMap((to, j) => (to >= 0 ? [alphabet[j]] : []));
}

/** Identifies a DFA by its table, to keep held-out DFAs out of training. */
export function dfaKey(task: DfaTask): string {
  return JSON.stringify(task.params);
}
