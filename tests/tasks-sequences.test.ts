import { describe, expect, it } from 'vitest';
import {
  addSymbolTargets,
  answer,
  dfaAllowedNext,
  hmmNextDistribution,
  promptLayout,
  resolveTaskConfig,
  sampleTrainBatch,
  specialTokens,
  taskList,
  type Batch,
  type DfaTask,
  type HmmTask,
  type TokenBatch,
} from '../src/tasks/index.js';
import { resolveRunConfig } from '../src/train/config.js';
import { dfaExamples } from '../src/tasks/dfa.js';
import { Rng } from '../src/util/rng.js';

function tokens(b: Batch): TokenBatch {
  if (b.kind !== 'tokens') throw new Error('expected a token batch');
  return b;
}

/** The x tokens and the y token of each example of row r, read back through the layout. */
function examples(b: TokenBatch, r: number, m: number): { x: number[]; y: number }[] {
  return Array.from({ length: b.demos + 1 }, (_, i) => {
    const start = r * b.seq + i * (m + 3);
    return { x: Array.from(b.tokens.subarray(start, start + m), Number), y: Number(b.targets[start + m]) };
  });
}

describe('GINC-style HMM prompts', () => {
  const cfg = resolveTaskConfig({ kind: 'hmm', demos: { min: 4, max: 4 }, trainTasks: 5, heldoutTasks: 2 });
  const m = cfg.hmm.length - 1;

  it('draws HMMs whose transition and emission rows are distributions', () => {
    for (const t of taskList(cfg, 'train') as HmmTask[]) {
      for (const row of [...t.params.transition, ...t.params.emission]) {
        expect(row.every((p) => p >= 0)).toBe(true);
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      }
      expect(t.params.emission[0]).toHaveLength(cfg.vocab);
    }
  });

  it('lays out examples of length-1 tokens, an arrow, the last token and a separator', () => {
    const b = tokens(sampleTrainBatch(cfg, new Rng(1), 4));
    const { arrow, sep } = specialTokens(cfg);
    const lay = promptLayout(cfg, 4);
    expect(b.seq).toBe(4 * (m + 3) + m + 1);
    expect(lay.scored).toEqual([0, 1, 2, 3, 4].map((i) => i * (m + 3) + m));
    for (let r = 0; r < b.batch; r++) {
      for (const i of [0, 1, 2, 3]) {
        const o = r * b.seq + i * (m + 3);
        expect(Number(b.tokens[o + m])).toBe(arrow);
        expect(Number(b.tokens[o + m + 1])).toBe(Number(b.targets[o + m]));
        expect(Number(b.tokens[o + m + 2])).toBe(sep);
      }
      expect(b.queryPos[r]).toBe(b.seq - 1);
    }
  });

  it('samples only continuations the HMM can emit, by its own predictive distribution', () => {
    const b = tokens(sampleTrainBatch(cfg, new Rng(2), 32));
    for (let r = 0; r < b.batch; r++) {
      for (const ex of examples(b, r, m)) {
        const p = hmmNextDistribution(b.tasks[r] as HmmTask, ex.x);
        expect(p.reduce((a, c) => a + c, 0)).toBeCloseTo(1, 9);
        expect(p[ex.y]).toBeGreaterThan(0);
      }
    }
  });

  it('uses only train HMMs in train prompts', () => {
    const ids = new Set(taskList(cfg, 'train').map((t) => t.id));
    for (const id of sampleTrainBatch(cfg, new Rng(3), 32).taskIds) expect(ids.has(id)).toBe(true);
  });

  it('has no answer function, since y is sampled', () => {
    expect(() => answer(taskList(cfg, 'train')[0], [1, 2])).toThrow(/hmmNextDistribution/);
  });
});

describe('RegBench-style DFA prompts', () => {
  const cfg = resolveTaskConfig({ kind: 'dfa', demos: { min: 5, max: 5 } });
  const m = cfg.dfa.length - 1;

  it('draws every example as a walk the DFA accepts, with y among the symbols allowed next', () => {
    const b = tokens(sampleTrainBatch(cfg, new Rng(1), 32));
    for (let r = 0; r < b.batch; r++) {
      const task = b.tasks[r] as DfaTask;
      for (const ex of examples(b, r, m)) {
        expect(ex.x.every((s) => task.params.alphabet.includes(s))).toBe(true);
        expect(dfaAllowedNext(task, ex.x)).toContain(ex.y);
      }
    }
  });

  it('allows exactly the configured number of symbols after any accepted prefix', () => {
    const task = taskList(cfg, 'heldout')[0] as DfaTask;
    expect(dfaAllowedNext(task, [])).toHaveLength(cfg.dfa.edges);
    expect(task.params.alphabet).toHaveLength(cfg.dfa.alphabet);
  });

  it('rejects a prefix the DFA does not accept', () => {
    const task = taskList(cfg, 'heldout')[0] as DfaTask;
    const outside = Array.from({ length: cfg.vocab }, (_, s) => s).find((s) => !task.params.alphabet.includes(s))!;
    expect(dfaAllowedNext(task, [outside])).toEqual([]);
  });

  it('lmLoss: makes every symbol of each x after its first the target of the position before it, keeping the answers', () => {
    for (const format of ['triplet', 'pairwise'] as const) {
      const c = resolveTaskConfig({ kind: 'dfa', format, demos: { min: 3, max: 3 } });
      const plain = tokens(sampleTrainBatch(c, new Rng(5), 4));
      const b = tokens(sampleTrainBatch(c, new Rng(5), 4));
      addSymbolTargets(c, b);
      const { scored } = promptLayout(c, b.demos);
      const xStarts = new Set(scored.map((p) => p - b.xOffset));
      for (let r = 0; r < b.batch; r++) {
        for (let t = 0; t < b.seq; t++) {
          const i = r * b.seq + t;
          const inX = [...xStarts].some((x) => t >= x && t < x + m - 1); // positions that see a next symbol of their own x
          if (inX) {
            expect(b.weights[i]).toBe(1);
            expect(b.targets[i]).toBe(b.tokens[i + 1]);
          } else {
            // Everywhere else the batch is as drawn: the answers, and nothing more.
            expect(b.weights[i]).toBe(plain.weights[i]);
            expect(b.targets[i]).toBe(plain.targets[i]);
          }
        }
      }
      expect(b.weights.reduce((a, w) => a + w, 0)).toBe(b.batch * (b.demos + 1) * m);
    }
  });

  it('lmLoss: is refused where an x is one token', () => {
    expect(() => resolveRunConfig({ task: { kind: 'discrete' }, train: { lmLoss: true } })).toThrow(/sequence families/);
    expect(resolveRunConfig({ task: { kind: 'dfa' }, model: { maxSeq: 72 }, train: { lmLoss: true } }).train.lmLoss).toBe(true);
  });

  it('markov: the last symbol is the state, so what may follow depends on it alone', () => {
    const mk = resolveTaskConfig({ kind: 'dfa', heldoutTasks: 4, dfa: { states: 8, alphabet: 8, edges: 3, length: 12, markov: true } });
    for (const task of taskList(mk, 'heldout') as DfaTask[]) {
      const { alphabet, next } = task.params;
      const successors = (sym: number) => next[alphabet.indexOf(sym)].flatMap((to, j) => (to >= 0 ? [alphabet[j]] : []));
      for (const ex of dfaExamples(mk, task, new Rng(task.id + 9), 4)) {
        const walk = [...ex.x, ex.y];
        for (let t = 1; t < walk.length; t++) {
          expect(successors(walk[t - 1])).toHaveLength(mk.dfa.edges);
          expect(dfaAllowedNext(task, walk.slice(0, t))).toEqual(successors(walk[t - 1]));
          expect(successors(walk[t - 1])).toContain(walk[t]);
        }
      }
    }
    expect(() => resolveTaskConfig({ kind: 'dfa', dfa: { states: 6, alphabet: 8, markov: true } })).toThrow(/one state per symbol/);
  });

  it('markov + doublyStochastic: every symbol has as many predecessors as successors (a uniform stationary distribution)', () => {
    const ds = resolveTaskConfig({ kind: 'dfa', heldoutTasks: 4, dfa: { states: 8, alphabet: 8, edges: 3, markov: true, doublyStochastic: true } });
    for (const task of taskList(ds, 'heldout') as DfaTask[]) {
      const { next } = task.params;
      const inDegree = new Array<number>(8).fill(0);
      for (const row of next) {
        expect(row.filter((to) => to >= 0)).toHaveLength(3);
        row.forEach((to, j) => {
          if (to >= 0) {
            expect(to).toBe(j); // still Markov: a symbol leads to its own state
            inDegree[j]++;
          }
        });
      }
      expect(inDegree).toEqual(new Array(8).fill(3));
    }
    expect(() => resolveTaskConfig({ kind: 'dfa', dfa: { doublyStochastic: true } })).toThrow(/set dfa.markov/);
  });

  it('never draws a held-out DFA as a fresh train task', () => {
    // Vocab 2, one state, one edge: there are exactly two DFAs (a loop on 0 or on 1). One is held out.
    const tiny = resolveTaskConfig({ kind: 'dfa', vocab: 2, heldoutTasks: 1, demos: { min: 1, max: 1 }, dfa: { states: 1, alphabet: 2, edges: 1, length: 3 } });
    const held = taskList(tiny, 'heldout')[0] as DfaTask;
    const heldSymbol = dfaAllowedNext(held, [])[0];
    const b = tokens(sampleTrainBatch(tiny, new Rng(4), 64));
    for (let r = 0; r < b.batch; r++) expect(Number(b.tokens[r * b.seq])).not.toBe(heldSymbol);
  });
});
