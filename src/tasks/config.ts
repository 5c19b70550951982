/**
 * The task config: which synthetic ICL suite prompts come from, in which format, and with how many
 * demos. Defaults live in one frozen object; `resolveTaskConfig` merges a user's values over them,
 * rejects unknown or ill-typed keys by name, then checks ranges and choices.
 */
import { ConfigError } from '../errors.js';
import { oneOf, resolveConfig } from '../util/config.js';

export const TASK_KINDS = ['discrete', 'linreg', 'sine', 'hmm', 'dfa'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export const FORMATS = ['triplet', 'pairwise'] as const;
export type Format = (typeof FORMATS)[number];

export const DISCRETE_FAMILIES = ['offset', 'permutation', 'multiply'] as const;
export type DiscreteFamily = (typeof DISCRETE_FAMILIES)[number];

export type Range = [number, number];

export interface TaskConfig {
  /** Which suite prompts come from. Default 'discrete'. */
  kind: TaskKind;
  /** 'triplet' (`x → y , … x_q →`) or 'pairwise' (`x y … x_q`). Default 'triplet'. */
  format: Format;
  /**
   * Seed of the task universe: which permutations, held-out tasks and task pools exist. Batches
   * draw from the Rng handed to the generators, so data changes with that Rng while the set of
   * tasks stays fixed by this seed. Default 0.
   */
  seed: number;
  /** V: symbols are token ids 0..V-1; ARROW = V, SEP = V+1 (discrete, hmm, dfa). Default 32. */
  vocab: number;
  /**
   * Demos per prompt. A batch has one demo count, drawn uniformly from [min, max] per batch when
   * the caller does not fix it; every arrow is scored, so each prompt also trains all shorter
   * prefixes. Default { min: 8, max: 8 }.
   */
  demos: { min: number; max: number };
  /**
   * Train tasks. Discrete: how many of the functions left after the held-out ones (0 = all of them).
   * Other kinds: size of a fixed pool (0 = a fresh task for every prompt, as in Garg et al. and
   * RegBench). Default 0.
   */
  trainTasks: number;
  /** Held-out tasks, disjoint from the train tasks, for OOD evaluation. Default 8. */
  heldoutTasks: number;
  discrete: {
    /** Families in the mix; a prompt picks a family uniformly, then a task in it. Default ['offset', 'permutation']. */
    families: DiscreteFamily[];
    /** How many fixed random permutations the 'permutation' family has. Default 16. */
    permutations: number;
    /**
     * Draw the xs of one prompt without replacement (when demos+1 ≤ V), so the query never
     * appears among the demos and cannot be answered by copying. Default true.
     */
    distinctInputs: boolean;
  };
  linreg: {
    /** d: dimension of x and w, and the model's d_in. Default 5 (the paper scale-down). */
    dIn: number;
    /** Std of Gaussian label noise on every y, targets included. Default 0. */
    noise: number;
    /**
     * Curriculum on the effective dimension: it ramps from start to end over `steps` training
     * steps; coordinates of x past it are zero. 0 for start or end means dIn; steps 0 means no
     * ramp (always end). Default { start: 0, end: 0, steps: 0 }.
     */
    curriculum: { start: number; end: number; steps: number };
  };
  sine: {
    /** a in y = a·sin(b·x + c), uniform in this range. Default [0.1, 5] (as in MAML's sine task). */
    amplitude: Range;
    /** b, uniform in this range. Default [0.5, 2]. */
    frequency: Range;
    /** c, uniform in this range. Default [0, π]. */
    phase: Range;
    /** x, uniform in this range. Default [-5, 5]. */
    x: Range;
    /** Std of Gaussian label noise. Default 0. */
    noise: number;
  };
  hmm: {
    /** Hidden states of each random HMM (a GINC "concept"). Default 8. */
    states: number;
    /** Tokens per example: length-1 of them form x and the last is y. Default 6. */
    length: number;
    /** Dirichlet concentration of transition rows; small values make the HMM near-deterministic. Default 0.1. */
    transitionConcentration: number;
    /** Dirichlet concentration of emission rows. Default 0.1. */
    emissionConcentration: number;
  };
  dfa: {
    /** States of each random DFA. Default 6. */
    states: number;
    /** Symbols each DFA uses, drawn from the V symbols. Default 8. */
    alphabet: number;
    /** Outgoing transitions per state (the symbols allowed next). Default 3. */
    edges: number;
    /** Tokens per example: length-1 of them form x and the last is y. Default 6. */
    length: number;
    /**
     * Each symbol leads to its own state (needs states = alphabet), so a walk is a Markov chain
     * over the symbols and the in-context bigram is the best predictor: Edelman et al. (2024)'s
     * in-context Markov chains, a control for the statistical induction RegBench needs. Default false.
     */
    markov: boolean;
    /**
     * With `markov`: every symbol also has `edges` predecessors, so the chain's stationary
     * distribution is uniform and the in-context unigram says nothing (Edelman et al.'s lever
     * against the unigram plateau). Default false.
     */
    doublyStochastic: boolean;
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') for (const v of Object.values(o)) deepFreeze(v);
  return Object.freeze(o);
}

export const TASK_DEFAULTS: Readonly<TaskConfig> = deepFreeze({
  kind: 'discrete',
  format: 'triplet',
  seed: 0,
  vocab: 32,
  demos: { min: 8, max: 8 },
  trainTasks: 0,
  heldoutTasks: 8,
  discrete: { families: ['offset', 'permutation'], permutations: 16, distinctInputs: true },
  linreg: { dIn: 5, noise: 0, curriculum: { start: 0, end: 0, steps: 0 } },
  sine: { amplitude: [0.1, 5], frequency: [0.5, 2], phase: [0, Math.PI], x: [-5, 5], noise: 0 },
  hmm: { states: 8, length: 6, transitionConcentration: 0.1, emissionConcentration: 0.1 },
  dfa: { states: 6, alphabet: 8, edges: 3, length: 6, markov: false, doublyStochastic: false },
} satisfies TaskConfig);

/** Merges `user` over TASK_DEFAULTS and checks it. `where` prefixes key names in errors. */
export function resolveTaskConfig(user?: unknown, where = 'task'): TaskConfig {
  const cfg = resolveConfig<TaskConfig>(TASK_DEFAULTS, user, where);
  const at = (key: string) => `${where}.${key}`;
  oneOf(cfg.kind, TASK_KINDS, at('kind'));
  oneOf(cfg.format, FORMATS, at('format'));
  int(cfg.seed, at('seed'), 0);
  int(cfg.vocab, at('vocab'), 2);
  int(cfg.demos.min, at('demos.min'), 0);
  int(cfg.demos.max, at('demos.max'), cfg.demos.min, 'demos.min');
  int(cfg.trainTasks, at('trainTasks'), 0);
  int(cfg.heldoutTasks, at('heldoutTasks'), 0);

  const d = cfg.discrete;
  if (d.families.length === 0) throw new ConfigError('needs at least one family', at('discrete.families'));
  d.families.forEach((f, i) => oneOf(f, DISCRETE_FAMILIES, at(`discrete.families[${i}]`)));
  if (new Set(d.families).size !== d.families.length) throw new ConfigError('lists a family twice', at('discrete.families'));
  int(d.permutations, at('discrete.permutations'), 1);
  // Each is drawn and kept in memory (a billion never finishes): a task universe, not a stream.
  if (d.permutations > MAX_PERMUTATIONS) throw new ConfigError(`expected at most ${MAX_PERMUTATIONS} permutations (each one is a task the universe holds), got ${d.permutations}`, at('discrete.permutations'));

  const l = cfg.linreg;
  int(l.dIn, at('linreg.dIn'), 1);
  nonNegative(l.noise, at('linreg.noise'));
  for (const k of ['start', 'end'] as const) {
    int(l.curriculum[k], at(`linreg.curriculum.${k}`), 0);
    if (l.curriculum[k] > l.dIn) throw new ConfigError(`${l.curriculum[k]} exceeds linreg.dIn = ${l.dIn}`, at(`linreg.curriculum.${k}`));
  }
  if ((l.curriculum.start || l.dIn) > (l.curriculum.end || l.dIn)) throw new ConfigError('start must not exceed end', at('linreg.curriculum'));
  int(l.curriculum.steps, at('linreg.curriculum.steps'), 0);

  for (const k of ['amplitude', 'frequency', 'phase', 'x'] as const) range(cfg.sine[k], at(`sine.${k}`));
  nonNegative(cfg.sine.noise, at('sine.noise'));

  int(cfg.hmm.states, at('hmm.states'), 1);
  int(cfg.hmm.length, at('hmm.length'), 2);
  positive(cfg.hmm.transitionConcentration, at('hmm.transitionConcentration'));
  positive(cfg.hmm.emissionConcentration, at('hmm.emissionConcentration'));

  int(cfg.dfa.states, at('dfa.states'), 1);
  int(cfg.dfa.alphabet, at('dfa.alphabet'), 1);
  // Only a DFA suite draws its alphabet from the symbols; other kinds may have a smaller vocab.
  if (cfg.kind === 'dfa' && cfg.dfa.alphabet > cfg.vocab) throw new ConfigError(`${cfg.dfa.alphabet} exceeds vocab = ${cfg.vocab}`, at('dfa.alphabet'));
  int(cfg.dfa.edges, at('dfa.edges'), 1);
  if (cfg.dfa.edges > cfg.dfa.alphabet) throw new ConfigError(`${cfg.dfa.edges} exceeds dfa.alphabet = ${cfg.dfa.alphabet}`, at('dfa.edges'));
  int(cfg.dfa.length, at('dfa.length'), 2);
  if (cfg.dfa.doublyStochastic && !cfg.dfa.markov) throw new ConfigError('applies to a Markov DFA: set dfa.markov too', at('dfa.doublyStochastic'));
  if (cfg.dfa.markov && cfg.dfa.states !== cfg.dfa.alphabet) throw new ConfigError(`a Markov DFA has one state per symbol: set dfa.states = dfa.alphabet = ${cfg.dfa.alphabet}`, at('dfa.states'));
  return cfg;
}

const MAX_PERMUTATIONS = 100_000;

function int(v: number, path: string, min: number, minName?: string): void {
  if (!Number.isInteger(v) || v < min) throw new ConfigError(`expected an integer ≥ ${minName ?? min}, got ${v}`, path);
}

function nonNegative(v: number, path: string): void {
  if (v < 0) throw new ConfigError(`expected a number ≥ 0, got ${v}`, path);
}

function positive(v: number, path: string): void {
  if (!(v > 0)) throw new ConfigError(`expected a number > 0, got ${v}`, path);
}

function range(r: number[], path: string): void {
  if (r.length !== 2 || r[0] > r[1]) throw new ConfigError(`expected [low, high] with low ≤ high, got ${JSON.stringify(r)}`, path);
}
