/**
 * Discrete token tasks: functions on the V symbols, drawn from families (offsets, products, fixed
 * random permutations). The universe of functions and its train / held-out split are fixed by
 * cfg.seed; held-out functions never occur in training.
 */
import { ConfigError } from '../errors.js';
import type { Rng } from '../util/rng.js';
import type { TaskConfig } from './config.js';
import { universeRng } from './seed.js';
import type { DiscreteTask, Example } from './types.js';

export function applyDiscrete(task: DiscreteTask, x: number): number {
  switch (task.family) {
    case 'offset':
      return (x + task.params.k) % task.params.vocab;
    case 'multiply':
      return (task.params.a * x) % task.params.vocab;
    case 'permutation':
      return task.params.perm[x];
  }
}

/** Every function of every family in the mix, grouped by family; ids run in that order. */
export function discreteUniverse(cfg: TaskConfig): DiscreteTask[][] {
  const V = cfg.vocab;
  const groups: DiscreteTask[][] = [];
  // The identity is never a task: copying x would pass for learning it. Tables seen so far keep
  // random permutations from repeating an offset, a product or each other.
  const seen = new Set([table(V, (x) => x)]);
  let id = 0;
  for (const family of cfg.discrete.families) {
    const group: DiscreteTask[] = [];
    const add = (t: Omit<DiscreteTask, 'id'>) => {
      const task = { ...t, id: id++ } as DiscreteTask;
      seen.add(table(V, (x) => applyDiscrete(task, x)));
      group.push(task);
    };
    if (family === 'offset') {
      for (let k = 1; k < V; k++) add({ family, name: `offset+${k}`, params: { k, vocab: V } });
    } else if (family === 'multiply') {
      for (let a = 2; a < V; a++) if (gcd(a, V) === 1) add({ family, name: `mul×${a}`, params: { a, vocab: V } });
    } else {
      const rng = universeRng(cfg, family);
      const want = cfg.discrete.permutations;
      for (let tries = 0; group.length < want; tries++) {
        if (tries > 100 * want) throw new ConfigError(`cannot find ${want} distinct non-trivial permutations of ${V} symbols`, 'task.discrete.permutations');
        const perm = rng.permutation(V);
        if (!seen.has(perm.join(','))) add({ family, name: `perm#${group.length}`, params: { perm } });
      }
    }
    if (group.length === 0) throw new ConfigError(`family '${family}' has no tasks for vocab = ${V}`, 'task.discrete.families');
    groups.push(group);
  }
  return groups;
}

/**
 * Splits the universe: held-out tasks first, then train tasks, each taken round-robin over the
 * families from a seeded shuffle, so both splits cover every family and the held-out tasks do not
 * depend on trainTasks.
 */
export function splitDiscrete(cfg: TaskConfig): { train: DiscreteTask[]; heldout: DiscreteTask[] } {
  const rng = universeRng(cfg, 'split');
  const queues = discreteUniverse(cfg).map((g) => shuffle(g, rng));
  const total = queues.reduce((n, q) => n + q.length, 0);
  if (cfg.heldoutTasks >= total) throw new ConfigError(`${cfg.heldoutTasks} leaves no train task: the mix has ${total} tasks`, 'task.heldoutTasks');
  const heldout = takeRoundRobin(queues, cfg.heldoutTasks);
  const left = total - cfg.heldoutTasks;
  if (cfg.trainTasks > left) throw new ConfigError(`${cfg.trainTasks} exceeds the ${left} tasks left after the held-out ones`, 'task.trainTasks');
  const train = takeRoundRobin(queues, cfg.trainTasks || left);
  const byId = (a: DiscreteTask, b: DiscreteTask) => a.id - b.id;
  return { train: train.sort(byId), heldout: heldout.sort(byId) };
}

/**
 * n examples of one task; the first is the query. With distinctInputs (and n ≤ V) the xs are a
 * partial Fisher–Yates shuffle, so the first k xs do not depend on n: prompts drawn from the same
 * Rng state share their query and their first demos across demo counts.
 */
export function discreteExamples(cfg: TaskConfig, task: DiscreteTask, rng: Rng, n: number): Example[] {
  const V = cfg.vocab;
  const xs: number[] = [];
  if (cfg.discrete.distinctInputs && n <= V) {
    const pool = Array.from({ length: V }, (_, i) => i);
    for (let i = 0; i < n; i++) {
      const j = i + rng.int(V - i);
      [pool[i], pool[j]] = [pool[j], pool[i]];
      xs.push(pool[i]);
    }
  } else {
    for (let i = 0; i < n; i++) xs.push(rng.int(V));
  }
  return xs.map((x) => ({ x: [x], y: applyDiscrete(task, x) }));
}

function takeRoundRobin<T>(queues: T[][], n: number): T[] {
  const out: T[] = [];
  while (out.length < n) for (const q of queues) if (q.length && out.length < n) out.push(q.shift()!);
  return out;
}

function shuffle<T>(xs: T[], rng: Rng): T[] {
  return rng.permutation(xs.length).map((i) => xs[i]);
}

function table(V: number, f: (x: number) => number): string {
  return Array.from({ length: V }, (_, x) => f(x)).join(',');
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
