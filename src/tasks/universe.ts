/**
 * The tasks of each split. Discrete: a finite universe of functions, split by cfg.seed. Other
 * kinds: held-out tasks are a fixed, seeded pool; train tasks are a fixed pool when trainTasks > 0
 * and otherwise drawn fresh for every prompt (never equal to a held-out task).
 */
import { ConfigError, InputError } from '../errors.js';
import type { TaskConfig } from './config.js';
import { splitDiscrete } from './discrete.js';
import { universeRng } from './seed.js';
import { SUITES } from './suites.js';
import type { Split, Task } from './types.js';

interface Universe {
  /** null: a fresh task per prompt. */
  train: readonly Task[] | null;
  heldout: readonly Task[];
  /** Keys of held-out tasks, for kinds whose fresh draws could repeat one. */
  reserved: ReadonlySet<string>;
}

// Universes are pure functions of the config; keep the last few rather than rebuild per batch.
const cache = new Map<string, Universe>();

export function universe(cfg: TaskConfig): Universe {
  const key = JSON.stringify(cfg);
  let u = cache.get(key);
  if (!u) {
    u = build(cfg);
    if (cache.size >= 16) cache.delete(cache.keys().next().value!);
    cache.set(key, u);
  }
  return u;
}

/** The task descriptors of one split. */
export function taskList(cfg: TaskConfig, split: Split): readonly Task[] {
  const u = universe(cfg);
  if (split === 'heldout') return u.heldout;
  if (!u.train) throw new InputError(`'${cfg.kind}' draws a fresh train task for every prompt (trainTasks: 0), so there is no list of train tasks; set trainTasks to fix a pool`);
  return u.train;
}

function build(cfg: TaskConfig): Universe {
  if (cfg.kind === 'discrete') {
    const { train, heldout } = splitDiscrete(cfg);
    return { train, heldout, reserved: new Set() };
  }
  const suite = SUITES[cfg.kind];
  const draw = suite.draw!;
  const keyOf = suite.key;
  const reserved = new Set<string>();
  // Held-out ids come first so they do not move when trainTasks changes.
  const heldout = pool(cfg.heldoutTasks, 'heldout', 0);
  const train = cfg.trainTasks > 0 ? pool(cfg.trainTasks, 'train', cfg.heldoutTasks) : null;
  return { train, heldout, reserved: new Set(keyOf ? heldout.map(keyOf) : []) };

  function pool(n: number, part: string, firstId: number): Task[] {
    const rng = universeRng(cfg, part);
    const out: Task[] = [];
    for (let tries = 0; out.length < n; tries++) {
      if (tries > 100 * n) throw new ConfigError(`cannot draw ${n} distinct ${cfg.kind} tasks: the ${cfg.kind} settings allow too few`, `task.${part}Tasks`);
      const t = draw(cfg, rng, firstId + out.length);
      const k = keyOf?.(t);
      if (k !== undefined) {
        if (reserved.has(k)) continue;
        reserved.add(k);
      }
      out.push(t);
    }
    return out;
  }
}
