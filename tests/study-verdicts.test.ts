/**
 * The claim verdict rules of the reproduction report (src/study/report.ts), on synthetic result
 * cells whose right verdict is known.
 */
import { describe, expect, it } from 'vitest';
import { claimTables, hasTv, seedsWithTv, summaryMarkdown } from '../src/study/report.js';
import type { Cell, StudySummary } from '../src/study/results.js';
import { estimate } from '../src/util/stats.js';

/** A cell with per-seed figures (the estimates are computed from them, as summarise does). */
function cell(over: Partial<Cell> & { seedsOf?: Record<string, (number | null)[]> }): Cell {
  const perSeed = over.seedsOf ?? {};
  const n = Object.values(perSeed)[0]?.length ?? 3;
  return {
    key: 'k',
    group: 'g',
    factors: {},
    kind: 'baseline',
    lambda: null,
    family: 'offset',
    format: 'triplet',
    layers: 4,
    positional: 'rotary',
    metric: 'accuracy',
    steps: 2000,
    seeds: Array.from({ length: n }, (_, i) => i),
    converged: n,
    figures: Object.fromEntries(Object.entries(perSeed).map(([k, v]) => [k, estimate(v)])),
    perSeed,
    tvCurve: [0.1, 0.1, 0.1, 0.1, 0.1],
    probe: null,
    reread: null,
    curves: { hendel: null, masked: null, taskProbe: null, iclByShots: null, unigram: null, bigram: null, trigram: null },
    ...over,
  };
}

const summary = (cells: Cell[]): StudySummary => ({ study: 's', description: '', commit: 'c', version: 'v', command: '', jobs: cells.length, finished: cells.length, missing: [], cells });
const verdictOf = (cells: Cell[], claim: string) => claimTables(summary(cells)).find((t) => t.claim.startsWith(claim))!.verdict;

const withTv = cell({ group: 'a', seedsOf: { recovered: [0.8, 0.7, 0.1], icl: [1, 1, 1] } });
const without = cell({ group: 'b', seedsOf: { recovered: [0.1, 0.0, 0.05], icl: [1, 1, 1] } });

describe('claim 1: task vectors emerge only under conditions', () => {
  it('a seed counts when either protocol recovers half of the gain; a cell needs 2 of 3 seeds', () => {
    expect(seedsWithTv(withTv)).toBe(2);
    expect(hasTv(withTv)).toBe(true);
    expect(hasTv(cell({ seedsOf: { recovered: [0.9, 0.1, 0.1] } }))).toBe(false);
    // A one-seed pilot with a task vector is not a cell that has one.
    expect(seedsWithTv(cell({ seedsOf: { recovered: [0.9] } }))).toBe(1);
    expect(hasTv(cell({ seedsOf: { recovered: [0.9] } }))).toBe(false);
    // Hendel's per-demo-set protocol alone can carry a seed.
    expect(hasTv(cell({ seedsOf: { recovered: [0, 0, 0], hendelRecovered: [0.6, 0.6, 0.2] } }))).toBe(true);
    // θ at the last layer (ℓ = L = 4) is the demo prompt's own output, not a task vector.
    expect(seedsWithTv(cell({ seedsOf: { recovered: [1.2, 2, 3], tvBestLayer: [4, 4, 3], hendelRecovered: [0.6, 1, 0], hendelLayer: [3, 4, 4] } }))).toBe(2);
  });

  it('is reproduced when a task vector appears in some cells and not others', () => {
    expect(verdictOf([withTv, without], '1. Task vectors')).toBe('reproduced');
  });

  it('is not reproduced when no cell has one, and only partly when every cell has one', () => {
    expect(verdictOf([without, cell({ group: 'c', seedsOf: { recovered: [0, 0.1, 0.2] } })], '1. Task vectors')).toBe('not reproduced');
    expect(verdictOf([withTv], '1. Task vectors')).toBe('partly');
  });

  it('the lever table is reproduced by one cell with a task vector in 2 of 3 seeds, and not by a mean pulled up by one seed', () => {
    const curves = { hendel: [0.1, 0.2], masked: null, taskProbe: null, iclByShots: null, unigram: null, bigram: null, trigram: null };
    const oneSeed = cell({ group: 'dropout', curves, seedsOf: { recovered: [0, 0, 0], hendelRecovered: [1, 0.2, 0.2] } });
    expect(verdictOf([oneSeed], '1 (second wave)')).toBe('not reproduced');
    const twoSeeds = cell({ group: 'dropout', curves, seedsOf: { recovered: [0, 0, 0], hendelRecovered: [0.6, 0.55, 0] } });
    expect(verdictOf([oneSeed, twoSeeds], '1 (second wave)')).toBe('reproduced');
  });
});

describe('claim 2: weak or non-local', () => {
  it('is reproduced when the task vectors found are weak', () => {
    expect(verdictOf([cell({ seedsOf: { recovered: [0.5, 0.5, 0.5], nonLocality2: [0, 0, 0] } })], '2.')).toBe('reproduced');
  });
  it('is reproduced when they are strong but the best two layers beat the best one', () => {
    expect(verdictOf([cell({ seedsOf: { recovered: [0.95, 0.95, 0.95], nonLocality2: [0.2, 0.2, 0.2] } })], '2.')).toBe('reproduced');
  });
  it('is not reproduced when they are strong and local', () => {
    expect(verdictOf([cell({ seedsOf: { recovered: [0.95, 0.95, 0.95], nonLocality2: [0, 0, 0] } })], '2.')).toBe('not reproduced');
  });
  it('is only partly reproduced when no layer holds the task at all (stronger than the claim)', () => {
    expect(verdictOf([without], '2.')).toBe('partly');
  });
});

describe('claim 3: TVP-loss forms a strong task vector at ℓ without harming ICL', () => {
  const zero = [0.1, 0.1, 0.1];
  const base = cell({ group: 't', seedsOf: { icl: [1, 1, 0.98], zeroShot: zero, tvAtLayer: [0.1, 0.1, 0.1] } });
  it("is reproduced when θ at ℓ recovers ≥ 0.9 of ICL's gain and ICL stays in the baseline interval", () => {
    const tvp = cell({ group: 't', kind: 'tvp-finetune', lambda: 1, seedsOf: { icl: [1, 0.99, 1], zeroShot: zero, tvAtLayer: [0.95, 1, 0.92] } });
    expect(verdictOf([base, tvp], '3.')).toBe('reproduced');
  });
  it('is not reproduced when the task vector is strong but ICL drops', () => {
    const tvp = cell({ group: 't', kind: 'tvp-scratch', lambda: 1, seedsOf: { icl: [0.6, 0.5, 0.55], zeroShot: zero, tvAtLayer: [0.6, 0.5, 0.55] } });
    expect(verdictOf([base, tvp], '3.')).toBe('not reproduced');
  });
  it('is partly reproduced when only some seeds are strong', () => {
    const tvp = cell({ group: 't', kind: 'tvp-scratch', lambda: 1, seedsOf: { icl: [1, 1, 1], zeroShot: zero, tvAtLayer: [0.95, 0.2, 0.3] } });
    expect(verdictOf([base, tvp], '3.')).toBe('partly');
  });
  it('does not call a θ strong for being close to ICL where zero-shot is already close (RegBench)', () => {
    // TV ÷ ICL = 0.94, but θ recovers only half of ICL's gain over a zero-shot of 0.54.
    const dfa = { group: 'r', family: 'dfa' as const };
    const b = cell({ ...dfa, seedsOf: { icl: [0.63, 0.65, 0.64], zeroShot: [0.54, 0.54, 0.54], tvAtLayer: [0.5, 0.52, 0.5] } });
    const tvp = cell({ ...dfa, kind: 'tvp-finetune', lambda: 1, seedsOf: { icl: [0.63, 0.65, 0.64], zeroShot: [0.54, 0.54, 0.54], tvAtLayer: [0.59, 0.6, 0.59], tvAtLayerOverIcl: [0.94, 0.92, 0.92] } });
    expect(verdictOf([b, tvp], '3.')).toBe('not reproduced');
    // For nMSE the same share: θ halfway between zero-shot 0.9 and ICL 0.1 recovers 0.5.
    const lin = { group: 'l', family: 'linreg' as const, metric: 'nmse' as const };
    const lb = cell({ ...lin, seedsOf: { icl: [0.1, 0.1, 0.1], zeroShot: [0.9, 0.9, 0.9], tvAtLayer: [0.9, 0.9, 0.9] } });
    const lt = cell({ ...lin, kind: 'tvp-finetune', lambda: 1, seedsOf: { icl: [0.1, 0.1, 0.1], zeroShot: [0.9, 0.9, 0.9], tvAtLayer: [0.5, 0.5, 0.5] } });
    const table = claimTables(summary([lb, lt])).find((t) => t.claim.startsWith('3.'))!;
    expect(table.rows[0][table.header.indexOf('per seed')]).toBe('0.50 0.50 0.50');
    expect(table.verdict).toBe('not reproduced');
  });
});

describe('claim 4: robustness and OOD', () => {
  const base = cell({ group: 'o', seedsOf: { heldout: [0.1, 0.12, 0.11], labelNoise: [0.8, 0.82, 0.81] } });
  it('is reproduced when some figures are better with intervals apart and none worse', () => {
    const tvp = cell({ group: 'o', kind: 'tvp-finetune', lambda: 1, seedsOf: { heldout: [0.5, 0.55, 0.52], labelNoise: [0.8, 0.83, 0.8] } });
    expect(verdictOf([base, tvp], '4.')).toBe('reproduced');
  });
  it('is not reproduced when the intervals overlap', () => {
    const tvp = cell({ group: 'o', kind: 'tvp-finetune', lambda: 1, seedsOf: { heldout: [0.05, 0.4, 0.12], labelNoise: [0.8, 0.82, 0.81] } });
    expect(verdictOf([base, tvp], '4.')).toBe('not reproduced');
  });
  it('is partly reproduced when one figure is better and another worse', () => {
    const tvp = cell({ group: 'o', kind: 'tvp-finetune', lambda: 1, seedsOf: { heldout: [0.5, 0.55, 0.52], labelNoise: [0.3, 0.32, 0.31] } });
    expect(verdictOf([base, tvp], '4.')).toBe('partly');
  });
});

describe('every family trains reliably', () => {
  const curves = { hendel: null, masked: null, taskProbe: null, iclByShots: [1, 0.5, 0.1], unigram: null, bigram: null, trigram: null };
  it('needs every seed at its target', () => {
    const linreg = cell({ group: 'linreg', family: 'linreg', metric: 'nmse', curves, seedsOf: { icl: [0.1, 0.15, 0.5] } });
    expect(verdictOf([linreg], 'Every family')).toBe('not reproduced');
    const good = cell({ group: 'linreg', family: 'linreg', metric: 'nmse', curves, seedsOf: { icl: [0.1, 0.15, 0.19] } });
    expect(verdictOf([good], 'Every family')).toBe('reproduced');
    // A recipe that fails beside one that holds in every seed: the family has a reliable recipe.
    const other = cell({ group: 'linreg-pairwise', family: 'linreg', metric: 'nmse', curves, seedsOf: { icl: [0.1, 0.15, 0.19] } });
    expect(verdictOf([linreg, other], 'Every family')).toBe('reproduced');
    // Two seeds at target are not three.
    const two = cell({ group: 'linreg-pairwise', family: 'linreg', metric: 'nmse', curves, seedsOf: { icl: [0.1, 0.15] } });
    expect(verdictOf([linreg, two], 'Every family')).toBe('not reproduced');
  });
  it('judges GINC and RegBench against the in-context bigram and 1-shot', () => {
    const dfa = cell({ group: 'regbench', family: 'dfa', curves, seedsOf: { icl: [0.9, 0.9, 0.7], bigram: [0.8, 0.8, 0.8], iclOneShot: [0.6, 0.6, 0.6] } });
    expect(verdictOf([dfa], 'Every family')).toBe('not reproduced');
    const good = cell({ group: 'regbench', family: 'dfa', curves, seedsOf: { icl: [0.9, 0.9, 0.85], bigram: [0.8, 0.8, 0.8], iclOneShot: [0.6, 0.6, 0.6] } });
    const sine = cell({ group: 'sine', family: 'sine', metric: 'nmse', curves, seedsOf: { icl: [0.2, 0.05, 0.05] } });
    expect(verdictOf([good, sine], 'Every family')).toBe('partly');
  });
  it("the README's short form keeps each family's best recipe: most seeds at target, then more seeds", () => {
    const family = (group: string, icl: number[]) => cell({ group, family: 'linreg', metric: 'nmse', curves, seedsOf: { icl } });
    const md = summaryMarkdown(summary([family('lr-a', [0.1, 0.5, 0.1]), family('lr-b', [0.1, 0.1, 0.1]), family('lr-c', [0.1]), family('lr-d', [0.9, 0.9, 0.9])]));
    const rows = md.split('\n').filter((l) => l.startsWith('| linreg'));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(/^\| linreg \| lr-b \|.*\| 3\/3 \|$/);
  });
});
