import { describe, expect, it } from 'vitest';
import { ConfigError, InputError } from '../src/errors.js';
import {
  TASK_DEFAULTS,
  answer,
  promptLayout,
  renderTokens,
  resolveTaskConfig,
  sampleBatch,
  sampleHeldoutBatch,
  sampleTrainBatch,
  specialTokens,
  taskList,
  taskPrompts,
  zeroShotPrompts,
  type Batch,
  type TaskConfig,
  type TokenBatch,
} from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';

function tokens(b: Batch): TokenBatch {
  if (b.kind !== 'tokens') throw new Error('expected a token batch');
  return b;
}

const at = (a: ArrayLike<number | bigint>, i: number) => Number(a[i]);

function discrete(user: object = {}): TaskConfig {
  return resolveTaskConfig({ demos: { min: 4, max: 4 }, ...user });
}

describe('task config', () => {
  it('resolves to a copy of the defaults when given nothing', () => {
    const cfg = resolveTaskConfig();
    expect(cfg).toEqual(TASK_DEFAULTS);
    cfg.discrete.families.push('multiply');
    expect(TASK_DEFAULTS.discrete.families).toEqual(['offset', 'permutation']);
  });

  it('keeps its defaults in a deeply frozen object', () => {
    expect(Object.isFrozen(TASK_DEFAULTS)).toBe(true);
    expect(Object.isFrozen(TASK_DEFAULTS.linreg.curriculum)).toBe(true);
  });

  it('rejects an unknown key by its full name', () => {
    expect(() => resolveTaskConfig({ vocabulary: 10 })).toThrow(/task\.vocabulary: unknown key/);
    expect(() => resolveTaskConfig({ linreg: { dim: 3 } })).toThrow(/task\.linreg\.dim: unknown key.*dIn/);
  });

  it('rejects an ill-typed value by its name', () => {
    expect(() => resolveTaskConfig({ vocab: '32' })).toThrow(ConfigError);
    expect(() => resolveTaskConfig({ vocab: '32' })).toThrow(/task\.vocab/);
    expect(() => resolveTaskConfig({ demos: { max: 2.5 } })).toThrow(/task\.demos\.max/);
  });

  it('rejects an unknown kind, format or family and lists the valid ones', () => {
    expect(() => resolveTaskConfig({ kind: 'xor' })).toThrow(/task\.kind: 'xor' is not valid. Should be one of: discrete, linreg, sine, hmm, dfa/);
    expect(() => resolveTaskConfig({ format: 'arrow' })).toThrow(/task\.format/);
    expect(() => resolveTaskConfig({ discrete: { families: ['offset', 'xor'] } })).toThrow(/task\.discrete\.families\[1\].*offset, permutation, multiply/);
  });

  it('rejects a demo range whose max is below its min', () => {
    expect(() => resolveTaskConfig({ demos: { min: 5, max: 3 } })).toThrow(/task\.demos\.max/);
  });

  it('rejects a curriculum past the dimension and a sine range given backwards', () => {
    expect(() => resolveTaskConfig({ linreg: { dIn: 4, curriculum: { end: 6 } } })).toThrow(/task\.linreg\.curriculum\.end/);
    expect(() => resolveTaskConfig({ sine: { x: [2, -2] } })).toThrow(/task\.sine\.x/);
  });
});

describe('discrete task universe', () => {
  const cfg = discrete({ discrete: { families: ['offset', 'permutation', 'multiply'] } });
  const V = cfg.vocab;
  const table = (t: Parameters<typeof answer>[0]) => Array.from({ length: V }, (_, x) => answer(t, x)).join(',');

  it('keeps train and held-out tasks disjoint, by id and by function', () => {
    const train = taskList(cfg, 'train');
    const heldout = taskList(cfg, 'heldout');
    expect(heldout).toHaveLength(cfg.heldoutTasks);
    const ids = new Set(train.map((t) => t.id));
    const tables = new Set(train.map(table));
    for (const t of heldout) {
      expect(ids.has(t.id)).toBe(false);
      expect(tables.has(table(t))).toBe(false);
    }
  });

  it('holds out tasks of every family', () => {
    expect(new Set(taskList(cfg, 'heldout').map((t) => t.family))).toEqual(new Set(['offset', 'permutation', 'multiply']));
  });

  it('never makes the identity a task, and never makes two tasks compute the same function', () => {
    const all = [...taskList(cfg, 'train'), ...taskList(cfg, 'heldout')];
    const tables = all.map(table);
    expect(new Set(tables).size).toBe(all.length);
    expect(tables).not.toContain(Array.from({ length: V }, (_, x) => x).join(','));
  });

  it('makes every task a bijection of the symbols', () => {
    for (const t of taskList(cfg, 'train')) expect(new Set(table(t).split(',')).size).toBe(V);
  });

  it('has V-1 offsets and the units of Z_V other than 1 as multipliers', () => {
    const all = [...taskList(cfg, 'train'), ...taskList(cfg, 'heldout')];
    expect(all.filter((t) => t.family === 'offset')).toHaveLength(V - 1);
    expect(all.filter((t) => t.family === 'multiply')).toHaveLength(V / 2 - 1); // V = 32: odd a, not 1
    expect(all.filter((t) => t.family === 'permutation')).toHaveLength(cfg.discrete.permutations);
  });

  it('keeps the held-out tasks when the number of train tasks changes', () => {
    const fewer = discrete({ discrete: { families: ['offset', 'permutation', 'multiply'] }, trainTasks: 5 });
    expect(taskList(fewer, 'heldout')).toEqual(taskList(cfg, 'heldout'));
    expect(taskList(fewer, 'train')).toHaveLength(5);
  });

  it('draws other permutations under another seed, and the same under the same seed', () => {
    const perms = (c: TaskConfig) => [...taskList(c, 'train'), ...taskList(c, 'heldout')].filter((t) => t.family === 'permutation').map(table);
    expect(perms(discrete({ seed: 1 }))).toEqual(perms(discrete({ seed: 1 })));
    expect(perms(discrete({ seed: 1 }))).not.toEqual(perms(discrete({ seed: 2 })));
  });

  it('rejects more train tasks than are left after the held-out ones, naming trainTasks', () => {
    expect(() => taskList(discrete({ vocab: 5, discrete: { families: ['offset'] }, heldoutTasks: 2, trainTasks: 3 }), 'train')).toThrow(/task\.trainTasks/);
  });

  it('never puts a held-out task into a train batch', () => {
    const heldout = new Set(taskList(cfg, 'heldout').map((t) => t.id));
    const rng = new Rng(3);
    for (let i = 0; i < 20; i++) for (const id of sampleTrainBatch(cfg, rng, 32).taskIds) expect(heldout.has(id)).toBe(false);
  });

  it('puts only held-out tasks into a held-out batch', () => {
    const heldout = new Set(taskList(cfg, 'heldout').map((t) => t.id));
    for (const id of sampleHeldoutBatch(cfg, new Rng(4), 64).taskIds) expect(heldout.has(id)).toBe(true);
  });
});

describe('determinism', () => {
  it('gives identical arrays for the same seed, and different ones for another seed', () => {
    const cfg = discrete({ demos: { min: 1, max: 8 } });
    const a = tokens(sampleTrainBatch(cfg, new Rng(7), 16));
    const b = tokens(sampleTrainBatch(cfg, new Rng(7), 16));
    const c = tokens(sampleTrainBatch(cfg, new Rng(8), 16));
    expect(b.tokens).toEqual(a.tokens);
    expect(b.targets).toEqual(a.targets);
    expect(b.weights).toEqual(a.weights);
    expect(b.shots).toEqual(a.shots);
    expect(b.taskIds).toEqual(a.taskIds);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('continues a stream exactly from a saved Rng state', () => {
    const cfg = discrete();
    const rng = new Rng(11);
    sampleTrainBatch(cfg, rng, 8);
    const resumed = new Rng(rng.state());
    expect(tokens(sampleTrainBatch(cfg, resumed, 8)).tokens).toEqual(tokens(sampleTrainBatch(cfg, rng, 8)).tokens);
  });

  it('gives k-shot and zero-shot prompts from the same Rng state the same queries', () => {
    const cfg = discrete();
    const task = taskList(cfg, 'train')[0];
    const few = tokens(taskPrompts(cfg, task, new Rng(5), 10, 6));
    const zero = tokens(zeroShotPrompts(cfg, task, new Rng(5), 10));
    expect(zero.seq).toBe(2);
    for (let b = 0; b < 10; b++) expect(at(zero.tokens, b * zero.seq)).toBe(at(few.tokens, b * few.seq + few.queryPos[b] - 1));
  });

  it('gives a longer prompt the same first demos as a shorter one from the same Rng state', () => {
    const cfg = discrete();
    const task = taskList(cfg, 'train')[3];
    const short = tokens(taskPrompts(cfg, task, new Rng(9), 4, 2));
    const long = tokens(taskPrompts(cfg, task, new Rng(9), 4, 5));
    for (let b = 0; b < 4; b++) {
      expect(long.tokens.subarray(b * long.seq, b * long.seq + 8)).toEqual(short.tokens.subarray(b * short.seq, b * short.seq + 8));
    }
  });
});

describe('prompt layout', () => {
  it('lays out triplet prompts as x → y , with arrows at 4i+1 and separators at 4i+3', () => {
    const cfg = discrete({ demos: { min: 5, max: 5 } });
    const { arrow, sep } = specialTokens(cfg);
    const b = tokens(sampleTrainBatch(cfg, new Rng(1), 8));
    expect(b.seq).toBe(4 * 5 + 2);
    for (let r = 0; r < b.batch; r++) {
      const row = b.tokens.subarray(r * b.seq, (r + 1) * b.seq);
      for (let i = 0; i <= 5; i++) {
        expect(at(row, 4 * i + 1)).toBe(arrow);
        expect(at(row, 4 * i)).toBeLessThan(cfg.vocab);
        if (i < 5) {
          expect(at(row, 4 * i + 3)).toBe(sep);
          expect(at(row, 4 * i + 2)).toBe(answer(b.tasks[r], at(row, 4 * i)));
        }
      }
      expect(b.queryPos[r]).toBe(b.seq - 1);
      expect(at(row, b.seq - 1)).toBe(arrow);
    }
  });

  it('scores every triplet arrow with f(x) as target and the number of demos before it as shots', () => {
    const cfg = discrete({ demos: { min: 5, max: 5 } });
    const b = tokens(sampleTrainBatch(cfg, new Rng(2), 8));
    for (let r = 0; r < b.batch; r++) {
      for (let t = 0; t < b.seq; t++) {
        const p = r * b.seq + t;
        const scored = t % 4 === 1;
        expect(b.weights[p]).toBe(scored ? 1 : 0);
        expect(b.shots[p]).toBe(scored ? (t - 1) / 4 : -1);
        expect(at(b.targets, p)).toBe(scored ? answer(b.tasks[r], at(b.tokens, p - 1)) : 0);
      }
    }
  });

  it('lays out pairwise prompts as x y, scoring each x with f(x)', () => {
    const cfg = discrete({ format: 'pairwise', demos: { min: 5, max: 5 } });
    const b = tokens(sampleTrainBatch(cfg, new Rng(3), 8));
    expect(b.seq).toBe(2 * 5 + 1);
    for (let r = 0; r < b.batch; r++) {
      for (let t = 0; t < b.seq; t++) {
        const p = r * b.seq + t;
        const x = at(b.tokens, p);
        expect(x).toBeLessThan(cfg.vocab); // no special tokens in pairwise prompts
        if (t % 2 === 0) {
          expect(b.weights[p]).toBe(1);
          expect(b.shots[p]).toBe(t / 2);
          expect(at(b.targets, p)).toBe(answer(b.tasks[r], x));
          if (t + 1 < b.seq) expect(at(b.tokens, p + 1)).toBe(answer(b.tasks[r], x));
        } else {
          expect(b.weights[p]).toBe(0);
          expect(b.shots[p]).toBe(-1);
        }
      }
      expect(b.queryPos[r]).toBe(b.seq - 1);
    }
  });

  it('reports the positions it writes through promptLayout', () => {
    const cfg = discrete({ demos: { min: 3, max: 3 } });
    const lay = promptLayout(cfg, 3);
    const b = tokens(sampleTrainBatch(cfg, new Rng(4), 2));
    expect(lay.seq).toBe(b.seq);
    expect(lay.scored).toEqual([1, 5, 9, 13]);
    const scored = [...b.weights.subarray(0, b.seq).keys()].filter((t) => b.weights[t] === 1);
    expect(scored).toEqual(lay.scored);
  });

  it('draws the xs of a prompt without repeats', () => {
    const cfg = discrete({ demos: { min: 12, max: 12 } });
    const b = tokens(sampleTrainBatch(cfg, new Rng(5), 16));
    for (let r = 0; r < b.batch; r++) {
      const xs = Array.from({ length: 13 }, (_, i) => at(b.tokens, r * b.seq + 4 * i));
      expect(new Set(xs).size).toBe(13);
    }
  });

  it('uses one demo count per batch, drawn from the configured range', () => {
    const cfg = discrete({ demos: { min: 2, max: 5 } });
    const rng = new Rng(6);
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const b = sampleTrainBatch(cfg, rng, 4);
      expect(b.seq).toBe(4 * b.demos + 2);
      seen.add(b.demos);
    }
    expect([...seen].sort()).toEqual([2, 3, 4, 5]);
  });

  it('renders prompts as text', () => {
    const cfg = discrete({ vocab: 10 });
    expect(renderTokens([3, 10, 5, 11, 4, 10], cfg)).toEqual(['3', '→', '5', ',', '4', '→']);
    expect(renderTokens(BigInt64Array.of(7n, 12n), cfg)).toEqual(['7', '<12>']);
  });

  it('rejects a negative demo count and an empty task list', () => {
    const cfg = discrete();
    expect(() => sampleBatch(cfg, new Rng(1), 2, { demos: -1 })).toThrow(InputError);
    expect(() => sampleBatch(cfg, new Rng(1), 2, { tasks: [] })).toThrow(/empty/);
  });
});

describe('out-of-distribution prompts of token tasks', () => {
  const cfg = discrete({ demos: { min: 8, max: 8 } });
  const task = taskList(cfg, 'train')[0];

  it('shuffles labels among the demos and leaves xs and the query target as they were', () => {
    const clean = tokens(taskPrompts(cfg, task, new Rng(1), 16, 8));
    const shuffled = tokens(taskPrompts(cfg, task, new Rng(1), 16, 8, { shuffleLabels: true }));
    let moved = 0;
    for (let r = 0; r < 16; r++) {
      const ys = (b: TokenBatch) => Array.from({ length: 8 }, (_, i) => at(b.tokens, r * b.seq + 4 * i + 2));
      const xs = (b: TokenBatch) => Array.from({ length: 9 }, (_, i) => at(b.tokens, r * b.seq + 4 * i));
      expect(xs(shuffled)).toEqual(xs(clean));
      expect([...ys(shuffled)].sort()).toEqual([...ys(clean)].sort());
      moved += Number(ys(shuffled).join() !== ys(clean).join());
      const q = r * clean.seq + clean.queryPos[r];
      expect(at(shuffled.targets, q)).toBe(at(clean.targets, q));
    }
    expect(moved).toBeGreaterThan(0);
  });

  it('flips demo labels to random symbols, and the target at each arrow is the label shown after it', () => {
    const b = tokens(taskPrompts(cfg, task, new Rng(2), 16, 8, { demoLabelFlip: 1 }));
    let wrong = 0;
    for (let r = 0; r < 16; r++) {
      for (let i = 0; i < 8; i++) {
        const p = r * b.seq + 4 * i;
        expect(at(b.targets, p + 1)).toBe(at(b.tokens, p + 2));
        wrong += Number(at(b.tokens, p + 2) !== answer(task, at(b.tokens, p)));
      }
      const q = r * b.seq + b.queryPos[r];
      expect(at(b.targets, q)).toBe(answer(task, at(b.tokens, q - 1)));
    }
    expect(wrong).toBeGreaterThan(100); // of 128; a flip keeps the label with chance 1/V
  });

  it('refuses regression-only options for token tasks', () => {
    expect(() => taskPrompts(cfg, task, new Rng(1), 2, 2, { queryShift: 1 })).toThrow(/queryShift applies to regression tasks only/);
  });

  it('refuses a task of another kind', () => {
    const lin = resolveTaskConfig({ kind: 'linreg', heldoutTasks: 1 });
    expect(() => taskPrompts(cfg, taskList(lin, 'heldout')[0], new Rng(1), 2, 2)).toThrow(/does not belong to kind 'discrete'/);
  });
});
