/**
 * The reproduction report of a study: one table per claim of Yang et al. (2025), each with a
 * verdict (reproduced / partly / not) that the numbers decide by a rule stated next to it, and
 * the Markdown of them (for the README). The HTML page is src/report/reproduction.ts.
 */
import path from 'node:path';
import { share } from '../util/stats.js';
import { writeFileAtomic } from '../util/fs.js';
import { type Estimate, estimate } from '../util/stats.js';
import { type Cell, GAIN_FLOOR, type StudySummary } from './results.js';

export type Verdict = 'reproduced' | 'partly' | 'not reproduced' | 'not tested';

export interface ClaimTable {
  readonly claim: string;
  readonly rule: string;
  readonly verdict: Verdict;
  readonly why: string;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** The family table only: the rows of each family's best recipe (largest share of seeds at target, more seeds on a tie), in table order. */
  readonly best?: readonly number[];
}

const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—');
const iv = (i: Estimate | undefined) => (!i || !Number.isFinite(i.mean) ? '—' : i.n > 1 ? `${f2(i.mean)} [${f2(i.low)}, ${f2(i.high)}]` : f2(i.mean));
const higher = (c: Cell) => c.metric === 'accuracy';
const cellName = (c: Cell) => `${c.family} ${c.format} ${c.layers}L ${c.positional}`;

/** A task vector "appears" in a cell when it recovers at least half of ICL's gain over zero-shot. */
const APPEARS = 0.5;
/** Below this recovered share no layer holds the task at all. */
const ABSENT = 0.2;
/**
 * "Strong" at the prescribed layer: θ at ℓ recovers ≥ 0.9 of ICL's gain over zero-shot. (TV at ℓ ÷
 * ICL alone called a RegBench θ strong that barely beat zero-shot: its zero-shot accuracy is 0.54.)
 */
const STRONG = 0.9;

/** Per seed, the share of ICL's gain over zero-shot that θ at ℓ recovers (null where the gain is under GAIN_FLOOR: a share of noise). */
export function gainShareAtLayer(c: Cell): (number | null)[] {
  const [tv, icl, zero] = [c.perSeed.tvAtLayer ?? [], c.perSeed.icl ?? [], c.perSeed.zeroShot ?? []];
  return tv.map((t, i) => {
    const [k, z] = [icl[i], zero[i]];
    if (t === null || k === null || k === undefined || z === null || z === undefined || Math.abs(k - z) < GAIN_FLOOR) return null;
    return share(t, z, k);
  });
}

export function claimTables(s: StudySummary): ClaimTable[] {
  const baselines = s.cells.filter((c) => c.kind === 'baseline');
  const tables = [claim1(baselines), claim2(baselines), queryCopyTable(s.cells), claim3(s.cells), claim4(s.cells)];
  // The second wave's tables, where its diagnostics were run.
  if (baselines.some((c) => c.curves?.hendel)) tables.splice(1, 0, leverTable(baselines));
  if (baselines.some((c) => c.curves?.iclByShots)) tables.unshift(familyTable(baselines));
  return tables;
}

/**
 * Seeds of a cell in which a task vector appears: the best layer's TV recovers ≥ APPEARS of ICL's
 * gain over zero-shot, by the task-wide search or by Hendel et al.'s per-demo-set protocol, at a
 * layer below the last. θ at ℓ = L is the demo prompt's own output state: it carries the dummy
 * query's answer, which only passes where many answers are right (RegBench's any-allowed-symbol).
 */
export function seedsWithTv(c: Cell): number {
  const below = (layer: number | null | undefined) => layer === undefined || layer === null || layer < c.layers;
  const found = (recovered: string, layer: string) => (i: number) => (c.perSeed[recovered]?.[i] ?? -Infinity) >= APPEARS && below(c.perSeed[layer]?.[i]);
  const [wide, hendel] = [found('recovered', 'tvBestLayer'), found('hendelRecovered', 'hendelLayer')];
  return c.seeds.filter((_, i) => wide(i) || hendel(i)).length;
}

/**
 * A cell "has" a task vector when it appears in at least 2 of its seeds and in 2 of every 3: a
 * one-seed pilot is reported but cannot settle it.
 */
export const hasTv = (c: Cell) => seedsWithTv(c) >= Math.max(2, Math.ceil((2 * c.seeds.length) / 3));

function claim1(cells: readonly Cell[]): ClaimTable {
  const appears = cells.filter(hasTv);
  const verdict: Verdict = cells.length === 0 ? 'not tested' : appears.length === 0 ? 'not reproduced' : appears.length < cells.length ? 'reproduced' : 'partly';
  const why =
    cells.length === 0
      ? 'no baseline runs finished'
      : appears.length === 0
        ? `no condition made a task vector appear: in all ${cells.length} baseline cells the best layer's TV recovers less than ${APPEARS} of ICL's gain over zero-shot (replace, add + centring and dummy-query averaging alike)`
        : `a task vector appears in ${appears.map((c) => `${c.group} (${cellName(c)})`).join('; ')}, and not in the other ${cells.length - appears.length} cells`;
  return {
    claim: '1. Task vectors emerge only under certain conditions (format, depth)',
    rule: `a TV "appears" in a seed when the dev-chosen best layer, below the last (θ at ℓ = L is the demo prompt's own output), recovers ≥ ${APPEARS} of ICL's gain over zero-shot, by the task-wide search or by Hendel et al.'s per-demo-set protocol; a cell has one when it appears in ≥ 2 seeds and ≥ 2 of every 3 (a one-seed pilot cannot have one); reproduced when some cells have one and others not`,
    verdict,
    why,
    header: ['group', 'family', 'format', 'layers', 'pos.', 'seeds (plateau)', 'ICL', '0-shot', 'TV best (replace)', 'best ℓ', 'recovered', 'add + centred', '4 dummies', 'x_q probe at ℓ=1', 'x_q re-read after ℓ=1'],
    rows: cells.map((c) => [
      c.group,
      c.family,
      c.format,
      String(c.layers),
      c.positional,
      `${c.seeds.length} (${c.converged})`,
      iv(c.figures.icl),
      iv(c.figures.zeroShot),
      iv(c.figures.tvBest),
      f2(c.figures.tvBestLayer?.mean ?? NaN),
      iv(c.figures.recovered),
      iv(c.figures.tvAddCentered),
      iv(c.figures.tvDummies),
      iv(c.figures.probeAt1),
      iv(c.figures.rereadAfter1),
    ]),
  };
}

/**
 * Claim 1 lever by lever (the second wave): each baseline cell with Hendel et al.'s exact protocol,
 * their attention-masking diagnostic and the task probe beside the task-wide search.
 */
function leverTable(cells: readonly Cell[]): ClaimTable {
  const rows = cells.filter((c) => c.curves?.hendel);
  const groups = [...new Set(rows.map((c) => c.group))];
  const per = groups.map((g) => {
    const cs = rows.filter((c) => c.group === g);
    const yes = cs.filter(hasTv);
    return `${g}: ${yes.length ? `a task vector in ${yes.map(factorName).join(', ')}` : `none of ${cs.length} cell${cs.length > 1 ? 's' : ''}`} (best Hendel recovered ${cs.map((c) => `${factorName(c)} ${iv(c.figures.hendelRecovered)}`).join('; ')})`;
  });
  const any = rows.some(hasTv);
  return {
    claim: '1 (second wave). Task vectors under the levers the literature names',
    rule: `ICL on held-out tasks: the same k-shot prompts on tasks never trained (task learning rather than retrieval, Raventós et al.); per cell: seeds with a TV (recovered ≥ ${APPEARS}, task-wide or per demo set); Hendel = θ per demo set from 2 dummy queries, written over the last position's output of block ℓ, ℓ chosen on dev demo sets, first token scored on test; masking = the lowest ℓ from which the last position may not attend to the demos and ICL keeps ≥ 90% of its gain (L: only unmasked); probe = held-out accuracy of a linear probe of the task at the last arrow (best layer; chance = 1 ÷ tasks). Reproduced when some cell has a TV in ≥ 2 of 3 seeds (at least 2: a one-seed pilot cannot)`,
    verdict: rows.length === 0 ? 'not tested' : any ? 'reproduced' : 'not reproduced',
    why: rows.length === 0 ? 'no second-wave baselines finished' : per.join('; '),
    header: ['lever', 'cell', 'seeds (plateau)', 'ICL', 'ICL on held-out tasks', '0-shot', 'TV task-wide', 'TV added (centred)', 'TV Hendel', 'Hendel ℓ', 'Hendel recovered', 'seeds with TV', 'demos read by ℓ (masking)', 'task probe (chance)', 'Hendel TV by ℓ = 0..L'],
    rows: rows.map((c) => [
      c.group,
      `${factorName(c)} (${c.layers}L)`,
      `${c.seeds.length} (${c.converged})`,
      iv(c.figures.icl),
      iv(c.figures.heldout),
      iv(c.figures.zeroShot),
      iv(c.figures.tvBest),
      iv(c.figures.tvAddCentered),
      iv(c.figures.hendelTv),
      f2(c.figures.hendelLayer?.mean ?? NaN),
      iv(c.figures.hendelRecovered),
      `${seedsWithTv(c)}/${c.seeds.length}`,
      iv(c.figures.readBy),
      c.figures.taskProbeBest ? `${iv(c.figures.taskProbeBest)} (${f2(c.figures.taskProbeChance?.mean ?? NaN)})` : '—',
      (c.curves.hendel ?? []).map(f2).join(' '),
    ]),
  };
}

/** "Every family trains reliably": each family's baselines, seed by seed, against its target. */
export const FAMILY_TARGETS: Readonly<Record<string, { readonly text: string; readonly ok: (icl: number, c: Cell, seed: number) => boolean }>> = {
  linreg: { text: 'k-shot nMSE ≤ 0.2', ok: (icl) => icl <= 0.2 },
  sine: { text: 'k-shot nMSE ≤ 0.08 (the first wave)', ok: (icl) => icl <= 0.08 },
  hmm: { text: 'k-shot accuracy above the in-context bigram and 1-shot', ok: (icl, c, i) => icl > (c.perSeed.bigram?.[i] ?? Infinity) && icl > (c.perSeed.iclOneShot?.[i] ?? Infinity) },
  dfa: { text: 'k-shot accuracy above the in-context bigram and 1-shot', ok: (icl, c, i) => icl > (c.perSeed.bigram?.[i] ?? Infinity) && icl > (c.perSeed.iclOneShot?.[i] ?? Infinity) },
};

function familyTable(cells: readonly Cell[]): ClaimTable {
  const rows = cells.filter((c) => c.curves?.iclByShots && FAMILY_TARGETS[c.family]);
  const passes = (c: Cell) => (c.perSeed.icl ?? []).filter((v, i) => v !== null && FAMILY_TARGETS[c.family].ok(v, c, i)).length;
  // The recipe is what gets fixed, not the seed: a family is reliable when one of its recipes (cells) reaches the target in every seed.
  const reliable = (c: Cell) => c.seeds.length >= 3 && passes(c) === c.seeds.length;
  const families = [...new Set(rows.map((c) => c.family))];
  const good = families.filter((f) => rows.some((c) => c.family === f && reliable(c)));
  const rank = (c: Cell) => (c.seeds.length > 0 ? passes(c) / c.seeds.length + c.seeds.length * 1e-3 : -1);
  const bestOf = new Map<string, Cell>();
  for (const c of rows) if (!bestOf.has(c.family) || rank(c) > rank(bestOf.get(c.family)!)) bestOf.set(c.family, c);
  return {
    claim: 'Every family trains reliably',
    rule: "each family has a recipe (a cell) whose baseline reaches its target in every seed (≥ 3): linear regression k-shot nMSE ≤ 0.2; sine ≤ 0.08; GINC and RegBench k-shot accuracy above the in-context bigram predictor and above 1-shot (accuracy: GINC agreement with the task-known Bayes-optimal token, RegBench a symbol the DFA allows)",
    verdict: rows.length === 0 ? 'not tested' : good.length === families.length ? 'reproduced' : good.length > 0 ? 'partly' : 'not reproduced',
    why: rows.length === 0 ? 'no family baselines finished' : rows.map((c) => `${c.group} (${c.family}): ${passes(c)} of ${c.seeds.length} seeds reach ${FAMILY_TARGETS[c.family].text}`).join('; '),
    header: ['family', 'cell', 'metric', 'k-shot per seed', '0-shot', '1-shot', 'k-shot', 'bigram (in-context)', 'trigram', 'unigram', 'seeds at target', 'ICL by shots (mean)'],
    rows: rows.map((c) => [
      c.family,
      c.group,
      c.metric,
      (c.perSeed.icl ?? []).map((v) => (v === null ? '—' : f2(v))).join(' '),
      iv(c.figures.zeroShot),
      iv(c.figures.iclOneShot),
      iv(c.figures.icl),
      iv(c.figures.bigram),
      iv(c.figures.trigram),
      iv(c.figures.unigram),
      `${passes(c)}/${c.seeds.length}`,
      (c.curves.iclByShots ?? []).map(f2).join(' '),
    ]),
    best: rows.flatMap((c, i) => (bestOf.get(c.family) === c ? [i] : [])),
  };
}

const factorName = (c: Cell) => Object.entries(c.factors).map(([k, v]) => `${k.split('.').pop()} ${v}`).join(', ') || c.group;

function claim2(cells: readonly Cell[]): ClaimTable {
  const rec = (c: Cell) => c.figures.recovered?.mean ?? 0;
  const present = cells.filter((c) => rec(c) >= ABSENT);
  const weak = present.filter((c) => rec(c) < STRONG);
  const nonLocal = present.filter((c) => (c.figures.nonLocality2?.mean ?? 0) > 0.05);
  const verdict: Verdict =
    cells.length === 0 ? 'not tested' : present.length === 0 ? 'partly' : weak.length + nonLocal.length === present.length ? 'reproduced' : weak.length + nonLocal.length > 0 ? 'partly' : 'not reproduced';
  const why =
    cells.length === 0
      ? 'no baseline runs finished'
      : present.length === 0
        ? `in none of the ${cells.length} baseline cells does any single layer's task vector recover even ${ABSENT} of ICL's gain, nor do the best 2 or 3 layers together: the task is not recoverable from the residual at the arrow at all, which goes beyond "weak"`
        : `of the ${present.length} cells with a task vector (recovered ≥ ${ABSENT}), ${weak.length} are weak (< ${STRONG}) and ${nonLocal.length} non-local (best 2 layers together beat the best one by > 0.05); ${cells.length - present.length} cells have none`;
  return {
    claim: '2. Where they emerge, task vectors are weak or non-local',
    rule: `among cells whose best layer recovers ≥ ${ABSENT} of ICL's gain: weak when < ${STRONG}; non-local when the best 2 layers injected together beat the best single layer by > 0.05 (test queries)`,
    verdict,
    why,
    header: ['group', 'family', 'format', 'layers', 'TV best', 'recovered', 'best-2 − best-1', 'best-3 − best-1', 'TV by layer ℓ = 0..L (mean over seeds)'],
    rows: cells.map((c) => [c.group, c.family, c.format, String(c.layers), iv(c.figures.tvBest), iv(c.figures.recovered), iv(c.figures.nonLocality2), iv(c.figures.nonLocality3), c.tvCurve.map(f2).join(' ')]),
  };
}

/**
 * Why a baseline has no task vector: the arrow's state already holds the query after block 1
 * (probe), and later blocks do not read the query again (re-read), so writing θ over the arrow
 * erases the query. Triplet cells only (see analysis/query-copy.ts).
 */
function queryCopyTable(cells: readonly Cell[]): ClaimTable {
  const rows = cells.filter((c) => c.probe && c.reread);
  const base = rows.filter((c) => c.kind === 'baseline');
  const tvp = rows.filter((c) => c.kind !== 'baseline');
  const at1 = (xs: readonly Cell[], k: 'probe' | 'reread') => xs.map((c) => c[k]![1]);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const families = [...new Set(base.map((c) => c.family))];
  const holds = (f: string) => {
    const b = base.filter((c) => c.family === f);
    return mean(at1(b, 'probe')) > 0.8 && mean(at1(b, 'reread')) < 0.3;
  };
  const per = families.map((f) => {
    const b = base.filter((c) => c.family === f);
    const t = tvp.filter((c) => c.family === f);
    const tv = t.length ? `; its TVP models: probe ${f2(mean(at1(t, 'probe')))}, re-read ${f2(mean(at1(t, 'reread')))}` : '';
    return `${f} baselines: probe at ℓ=1 ${f2(mean(at1(b, 'probe')))}, re-read after ℓ=1 ${f2(mean(at1(b, 'reread')))}${tv} (${holds(f) ? 'holds' : 'does not hold'})`;
  });
  const held = families.filter(holds);
  return {
    claim: 'Why the baselines show no task vector: the arrow copies the query early, and nothing reads it again',
    rule: 'x_q probe: a ridge read-out of x_q from the last arrow\'s residual at ℓ (held-out accuracy; R² for regression); re-read: the largest head\'s attention from the arrow to x_q in the blocks after ℓ. The hypothesis holds for a family when its baselines have probe > 0.8 and re-read < 0.3 at ℓ = 1',
    verdict: base.length === 0 ? 'not tested' : held.length === families.length ? 'reproduced' : held.length > 0 ? 'partly' : 'not reproduced',
    why: base.length === 0 ? 'no triplet cells finished' : per.join('; '),
    header: ['cell', 'run', 'λ', 'x_q probe by ℓ = 0..L', 're-read after ℓ = 0..L'],
    rows: rows.map((c) => [`${c.group} ${cellName(c)}`, c.kind, c.lambda === null ? '—' : String(c.lambda), c.probe!.map(f2).join(' '), c.reread!.map(f2).join(' ')]),
  };
}

/** TVP cells with the baseline of the same group and factors. */
function pairs(cells: readonly Cell[]): { base: Cell; tvp: Cell }[] {
  const same = (a: Cell, b: Cell) => a.group === b.group && JSON.stringify(a.factors) === JSON.stringify(b.factors);
  return cells.filter((c) => c.kind !== 'baseline').flatMap((tvp) => cells.filter((b) => b.kind === 'baseline' && same(b, tvp)).map((base) => ({ base, tvp })));
}

function claim3(cells: readonly Cell[]): ClaimTable {
  const ps = pairs(cells);
  const strongSeeds = (c: Cell) => gainShareAtLayer(c).filter((v) => v !== null && v >= STRONG).length;
  const ok = (p: { base: Cell; tvp: Cell }) => {
    const strong = (estimate(gainShareAtLayer(p.tvp)).mean || 0) >= STRONG;
    const b = p.base.figures.icl;
    const t = p.tvp.figures.icl;
    const kept = !!b && !!t && (higher(p.base) ? t.mean >= b.low - 0.01 : t.mean <= b.high + 0.01);
    return { strong, kept };
  };
  const name = (p: { tvp: Cell }) => `${p.tvp.group} ${p.tvp.kind} λ=${p.tvp.lambda}`;
  const families = [...new Set(ps.map((p) => p.tvp.family))];
  const perFamily = families.map((f) => {
    const fps = ps.filter((p) => p.tvp.family === f);
    const good = fps.filter((p) => ok(p).strong && ok(p).kept);
    const some = fps.filter((p) => ok(p).kept && strongSeeds(p.tvp) > 0);
    const seeds = fps.map((p) => `${name(p)} ${strongSeeds(p.tvp)}/${p.tvp.seeds.length}`).join(', ');
    const state: Verdict = good.length ? 'reproduced' : some.length ? 'partly' : 'not reproduced';
    return { f, state, text: `${f}: ${good.length ? `reproduced by ${good.map(name).join('; ')}` : some.length ? `strong at ℓ in some seeds only, with ICL kept` : 'no setting both strong at ℓ and keeping ICL'} (seeds whose θ at ℓ recovers ≥ ${STRONG} of ICL's gain: ${seeds})` };
  });
  const verdict: Verdict =
    ps.length === 0 ? 'not tested' : perFamily.every((p) => p.state === 'reproduced') ? 'reproduced' : perFamily.some((p) => p.state !== 'not reproduced') ? 'partly' : 'not reproduced';
  return {
    claim: '3. TVP-loss forms a strong task vector at a prescribed layer, without harming ICL',
    rule: `reproduced for a family when some setting's θ at ℓ recovers, as a mean over seeds, ≥ ${STRONG} of ICL's gain over zero-shot ((TV − 0-shot) ÷ (ICL − 0-shot), accuracy or nMSE alike; undefined where ICL's gain is under ${GAIN_FLOOR}) with ICL within the baseline's 95% interval; the claim is reproduced when every family has such a setting`,
    verdict,
    why: ps.length === 0 ? 'no TVP runs finished' : perFamily.map((p) => p.text).join('; '),
    header: ['cell', 'run', 'λ', 'ℓ', 'steps', 'ICL', 'baseline ICL', '0-shot', 'TV at ℓ', 'baseline TV at ℓ', 'TV at ℓ ÷ ICL', "share of ICL's gain at ℓ", 'per seed', 'best ℓ (dev)'],
    rows: ps.map(({ base, tvp }) => [
      `${tvp.group} ${cellName(tvp)}`,
      tvp.kind,
      String(tvp.lambda),
      String(Math.ceil(tvp.layers / 2)),
      tvp.kind === 'tvp-finetune' ? `${base.steps / 2} + ${tvp.steps}` : String(tvp.steps),
      iv(tvp.figures.icl),
      iv(base.figures.icl),
      iv(tvp.figures.zeroShot),
      iv(tvp.figures.tvAtLayer),
      iv(base.figures.tvAtLayer),
      iv(tvp.figures.tvAtLayerOverIcl),
      iv(estimate(gainShareAtLayer(tvp))),
      gainShareAtLayer(tvp).map((v) => (v === null ? '—' : f2(v))).join(' '),
      f2(tvp.figures.tvBestLayer?.mean ?? NaN),
    ]),
  };
}

function claim4(cells: readonly Cell[]): ClaimTable {
  const ps = pairs(cells);
  const keys = (c: Cell) => ['heldout', 'labelNoise', 'queryShift', ...Object.keys(c.figures).filter((k) => k.startsWith('length×')).sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)))];
  const better: string[] = [];
  const worse: string[] = [];
  const lines: string[] = [];
  for (const { base, tvp } of ps) {
    const [up, down]: [string[], string[]] = [[], []];
    for (const k of keys(tvp)) {
      const [b, t] = [base.figures[k], tvp.figures[k]];
      if (!b || !t || !Number.isFinite(b.mean) || !Number.isFinite(t.mean)) continue;
      // Apart: the intervals do not overlap; "better" is higher accuracy or lower nMSE.
      const [tBetter, tWorse] = higher(base) ? [t.low > b.high, t.high < b.low] : [t.high < b.low, t.low > b.high];
      if (tBetter) up.push(k);
      else if (tWorse) down.push(k);
    }
    const name = `${tvp.group} ${tvp.kind} λ=${tvp.lambda}`;
    better.push(...up.map((k) => `${name} ${k}`));
    worse.push(...down.map((k) => `${name} ${k}`));
    lines.push(`${name}: better on ${up.join(', ') || 'nothing'}; worse on ${down.join(', ') || 'nothing'}`);
  }
  const verdict: Verdict = ps.length === 0 ? 'not tested' : better.length > 0 && worse.length === 0 ? 'reproduced' : better.length > 0 ? 'partly' : 'not reproduced';
  const why = ps.length === 0 ? 'no TVP runs finished' : `with intervals apart from the baseline's: ${lines.join('; ')}`;
  const allKeys = ps.length ? keys(ps[0].tvp) : [];
  return {
    claim: '4. TVP-trained models are more robust and generalise better out of distribution',
    rule: 'figures: ICL at the query on held-out tasks, with 20% of demo labels flipped (regression: label noise σ = 0.5), with the query scaled ×2 and shifted +0.5 (regression), and with k demos for k = ½, 1, 1.5, 2 × the trained number (length); a figure counts when the 95% intervals over seeds of TVP and baseline do not overlap; reproduced when some figures are better and none worse',
    verdict,
    why,
    header: ['cell', 'run', 'λ', ...allKeys.map((k) => `${k}: TVP / baseline`)],
    rows: ps.map(({ base, tvp }) => [`${tvp.group} ${cellName(tvp)}`, tvp.kind, String(tvp.lambda), ...allKeys.map((k) => `${iv(tvp.figures[k])} / ${iv(base.figures[k])}`)]),
  };
}

export function reproductionMarkdown(s: StudySummary): string {
  const lines = [`Study \`${s.study}\`: ${s.finished} of ${s.jobs} jobs finished; tvlens ${s.version}, commit ${s.commit.slice(0, 12)}; \`${s.command}\`.`, ''];
  lines.push('Each figure: mean over seeds [95% percentile-bootstrap interval over seeds]. Accuracy for token tasks, normalised MSE for regression. Layer ℓ: 0 = embeddings, ℓ = output of block ℓ.', '');
  for (const t of claimTables(s)) {
    lines.push(`#### ${t.claim}: **${t.verdict}**`, '', `${t.why}. (Rule: ${t.rule}.)`, '');
    if (t.rows.length) {
      lines.push(`| ${t.header.join(' | ')} |`, `|${t.header.map(() => '---').join('|')}|`);
      for (const r of t.rows) lines.push(`| ${r.join(' | ')} |`);
      lines.push('');
    }
  }
  if (s.missing.length) lines.push(`Not finished: ${s.missing.length} jobs (${s.missing.slice(0, 6).join(', ')}${s.missing.length > 6 ? ', …' : ''}).`, '');
  return lines.join('\n');
}

/**
 * The README's short form of a study: one line per claim with its verdict, then the tables a reader
 * needs first (every family's seeds; claim 1 lever by lever), with only their key columns. The full
 * tables are reproductionMarkdown's.
 */
export function summaryMarkdown(s: StudySummary): string {
  const tables = claimTables(s);
  const lines = [`Study \`${s.study}\`: ${s.finished} of ${s.jobs} jobs; commit ${s.commit.slice(0, 12)}. Mean over seeds [95% bootstrap interval].`, ''];
  lines.push('| claim | verdict |', '|---|---|', ...tables.map((t) => `| ${t.claim} | **${t.verdict}** |`), '');
  const families = tables.find((t) => t.claim.startsWith('Every family'));
  if (families && families.rows.length > 0) {
    const columns = ['family', 'cell', 'metric', 'k-shot per seed', '0-shot', '1-shot', 'bigram (in-context)', 'seeds at target'];
    const at = columns.map((c) => families.header.indexOf(c)).filter((i) => i >= 0);
    const rows = (families.best ?? []).map((i) => families.rows[i]);
    lines.push(
      `**${families.claim}** (${families.verdict}): each family's best recipe (every cell: docs/science.md)`,
      '',
      `| ${at.map((i) => families.header[i]).join(' | ')} |`,
      `|${at.map(() => '---').join('|')}|`,
      ...rows.map((r) => `| ${at.map((i) => r[i]).join(' | ')} |`),
      '',
    );
  }
  return lines.join('\n');
}

/** Writes reproduction.md into the study folder (the HTML page is report/reproduction.ts's). */
export function writeReproductionMarkdown(dir: string, s: StudySummary): string {
  const file = path.join(dir, 'reproduction.md');
  writeFileAtomic(file, reproductionMarkdown(s));
  return file;
}
