/**
 * A study's results: one Arrow table with a row per finished job (pandas and pyarrow read it as it
 * is), and a JSON summary of every cell (one setting, over its seeds) with the git commit and the
 * tvlens version that made it.
 *
 * Intervals over seeds are percentile bootstrap intervals of the mean (util/stats): they stay
 * inside the range of the values, so an accuracy interval stays inside [0, 1].
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as arrow from 'apache-arrow';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { type Estimate, estimate } from '../util/stats.js';
import { PACKAGE_ROOT, VERSION } from '../version.js';
import { SUITE_DEFAULTS } from '../eval/suite.js';
import type { JobResult } from './job.js';
import type { Job, StudySpec } from './spec.js';

/** One setting of the grid over its seeds. */
export interface Cell {
  readonly key: string;
  readonly group: string;
  readonly factors: JobResult['factors'];
  readonly kind: JobResult['kind'];
  readonly lambda: number | null;
  readonly family: string;
  readonly format: string;
  readonly layers: number;
  readonly positional: string;
  readonly metric: JobResult['metric'];
  /** Training steps of its runs (a fine-tune's own steps, after the baseline's checkpoint). */
  readonly steps: number;
  readonly seeds: readonly number[];
  readonly converged: number;
  readonly figures: Readonly<Record<string, Estimate>>;
  /** Each figure's value per seed, in the order of `seeds` (null where a run has none). */
  readonly perSeed: Readonly<Record<string, readonly (number | null)[]>>;
  /** Mean TV curve over seeds, per layer. */
  readonly tvCurve: readonly number[];
  readonly probe: readonly number[] | null;
  readonly reread: readonly number[] | null;
  /** Mean over seeds, per layer or per shot count: Hendel's θ(S) curve, attention masking, the task probe, ICL by shots and the n-gram baselines. */
  readonly curves: Readonly<Record<'hendel' | 'masked' | 'taskProbe' | 'iclByShots' | 'unigram' | 'bigram' | 'trigram', readonly number[] | null>>;
}

export interface StudySummary {
  readonly study: string;
  readonly description: string;
  readonly commit: string;
  readonly version: string;
  readonly command: string;
  readonly jobs: number;
  readonly finished: number;
  readonly missing: readonly string[];
  readonly cells: readonly Cell[];
}

/** The per-job figures a cell summarises. */
export function figuresOf(r: JobResult): Record<string, number | null> {
  const out: Record<string, number | null> = {
    icl: r.icl,
    zeroShot: r.zeroShot,
    tvBest: r.tvBest,
    tvBestLayer: r.tvBestLayer,
    // Undefined where ICL barely beats zero-shot: the ratio would divide by noise.
    recovered: Math.abs(r.searchIcl - r.searchZeroShot) >= GAIN_FLOOR ? r.recovered : null,
    tvAtLayer: r.tvAtLayer,
    tvAtLayerOverIcl: r.metric === 'accuracy' ? r.tvAtLayer / r.icl : (1 - r.tvAtLayer) / (1 - r.icl),
    nonLocality2: r.nonLocality2,
    nonLocality3: r.nonLocality3,
    tvAddCentered: r.tvAddCentered,
    tvDummies: r.tvDummies,
    heldout: r.heldout,
    labelNoise: r.labelNoise,
    queryShift: r.queryShift,
    probeAt1: r.probe ? r.probe[1] : null,
    rereadAfter1: r.reread ? r.reread[1] : null,
    // The second wave's emergence diagnostics (absent from first-wave results).
    hendelTv: r.hendel?.best.test ?? null,
    hendelLayer: r.hendel?.best.layer ?? null,
    hendelRecovered: r.hendel && Math.abs(r.hendel.icl - r.hendel.zeroShot) >= GAIN_FLOOR ? r.hendel.recovered : null,
    readBy: r.masking?.readBy ?? null,
    taskProbeBest: r.taskProbe ? Math.max(...r.taskProbe.accuracy) : null,
    taskProbeChance: r.taskProbe?.chance ?? null,
    iclOneShot: r.iclByShots?.[1] ?? null,
    unigram: r.ngram ? r.ngram.unigram[r.ngram.unigram.length - 1] : null,
    bigram: r.ngram ? r.ngram.bigram[r.ngram.bigram.length - 1] : null,
    trigram: r.ngram?.trigram ? r.ngram.trigram[r.ngram.trigram.length - 1] : null,
  };
  // By multiple of the trained demo count (the eval suite's length factors), so families line up.
  r.length.forEach((l, i) => (out[`length×${SUITE_DEFAULTS.lengthFactors[i] ?? i}`] = l.score));
  return out;
}

/** The smallest ICL gain over zero-shot (accuracy or nMSE) for which a recovered share is defined, as for the task-wide search. */
export const GAIN_FLOOR = 0.1;

const cellKey = (r: Pick<JobResult, 'group' | 'factors' | 'kind' | 'lambda'>) =>
  [r.group, ...Object.entries(r.factors).map(([k, v]) => `${k}=${v}`), r.kind, r.lambda === null ? '' : `λ=${r.lambda}`].filter(Boolean).join(' ');

function meanCurve(curves: readonly (readonly number[] | null)[]): number[] | null {
  const cs = curves.filter((c): c is readonly number[] => c !== null);
  if (cs.length === 0) return null;
  return cs[0].map((_, i) => cs.reduce((s, c) => s + c[i], 0) / cs.length);
}

export function summarise(spec: StudySpec, jobs: readonly Job[], results: readonly JobResult[], command: string): StudySummary {
  const byCell = new Map<string, JobResult[]>();
  for (const r of results) byCell.set(cellKey(r), [...(byCell.get(cellKey(r)) ?? []), r]);
  const cells: Cell[] = [...byCell.entries()].map(([key, rs]) => {
    const keys = [...new Set(rs.flatMap((r) => Object.keys(figuresOf(r))))];
    const r0 = rs[0];
    return {
      key,
      group: r0.group,
      factors: r0.factors,
      kind: r0.kind,
      lambda: r0.lambda,
      family: r0.family,
      format: r0.format,
      layers: r0.layers,
      positional: r0.positional,
      metric: r0.metric,
      steps: r0.steps,
      seeds: rs.map((r) => r.seed),
      converged: rs.filter((r) => r.converged).length,
      figures: Object.fromEntries(keys.map((k) => [k, estimate(rs.map((r) => figuresOf(r)[k] ?? null))])),
      perSeed: Object.fromEntries(keys.map((k) => [k, rs.map((r) => figuresOf(r)[k] ?? null)])),
      tvCurve: meanCurve(rs.map((r) => r.tvCurve)) ?? [],
      probe: meanCurve(rs.map((r) => r.probe)),
      reread: meanCurve(rs.map((r) => r.reread)),
      curves: {
        hendel: meanCurve(rs.map((r) => r.hendel?.curve ?? null)),
        masked: meanCurve(rs.map((r) => r.masking?.masked ?? null)),
        taskProbe: meanCurve(rs.map((r) => r.taskProbe?.accuracy ?? null)),
        iclByShots: meanCurve(rs.map((r) => r.iclByShots ?? null)),
        unigram: meanCurve(rs.map((r) => r.ngram?.unigram ?? null)),
        bigram: meanCurve(rs.map((r) => r.ngram?.bigram ?? null)),
        trigram: meanCurve(rs.map((r) => r.ngram?.trigram ?? null)),
      },
    };
  });
  const have = new Set(results.map((r) => r.id));
  return {
    study: spec.name,
    description: spec.description,
    commit: gitCommit(),
    version: VERSION,
    command,
    jobs: jobs.length,
    finished: results.length,
    missing: jobs.filter((j) => !have.has(j.id)).map((j) => j.id),
    cells,
  };
}

/** The commit of the tvlens checkout, with "-dirty" when it has uncommitted changes; "unknown" outside git. */
export function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

/** The results table: one row per finished job, in job order. */
export function resultsTable(results: readonly JobResult[], summary: Pick<StudySummary, 'study' | 'commit' | 'version'>): arrow.Table {
  const col = <T>(f: (r: JobResult) => T) => results.map(f);
  const num = (f: (r: JobResult) => number | null) => Float64Array.from(results, (r) => f(r) ?? NaN);
  const table = arrow.tableFromArrays({
    id: col((r) => r.id),
    group: col((r) => r.group),
    kind: col((r) => r.kind),
    lambda: num((r) => r.lambda),
    seed: Int32Array.from(results, (r) => r.seed),
    family: col((r) => r.family),
    format: col((r) => r.format),
    layers: Int32Array.from(results, (r) => r.layers),
    positional: col((r) => r.positional),
    steps: Int32Array.from(results, (r) => r.steps),
    metric: col((r) => r.metric),
    converged: col((r) => r.converged),
    icl: num((r) => r.icl),
    zero_shot: num((r) => r.zeroShot),
    tv_best_layer: Int32Array.from(results, (r) => r.tvBestLayer),
    tv_best: num((r) => r.tvBest),
    recovered: num((r) => r.recovered),
    strength: num((r) => r.strength),
    tv_layer: Int32Array.from(results, (r) => r.tvLayer),
    tv_at_layer: num((r) => r.tvAtLayer),
    nonlocality_2: num((r) => r.nonLocality2),
    nonlocality_3: num((r) => r.nonLocality3),
    entropy: num((r) => r.entropy),
    tv_add_centered: num((r) => r.tvAddCentered),
    tv_dummies: num((r) => r.tvDummies),
    heldout: num((r) => r.heldout),
    label_noise: num((r) => r.labelNoise),
    query_shift: num((r) => r.queryShift),
    probe_at_1: num((r) => (r.probe ? r.probe[1] : null)),
    reread_after_1: num((r) => (r.reread ? r.reread[1] : null)),
    tv_curve: col((r) => JSON.stringify(r.tvCurve)),
    hendel_tv: num((r) => r.hendel?.best.test ?? null),
    hendel_layer: num((r) => r.hendel?.best.layer ?? null),
    hendel_recovered: num((r) => r.hendel?.recovered ?? null),
    hendel_curve: col((r) => JSON.stringify(r.hendel?.curve ?? null)),
    masked_icl: col((r) => JSON.stringify(r.masking?.masked ?? null)),
    read_by: num((r) => r.masking?.readBy ?? null),
    task_probe: col((r) => JSON.stringify(r.taskProbe?.accuracy ?? null)),
    icl_by_shots: col((r) => JSON.stringify(r.iclByShots ?? null)),
    bigram_by_shots: col((r) => JSON.stringify(r.ngram?.bigram ?? null)),
    trigram_by_shots: col((r) => JSON.stringify(r.ngram?.trigram ?? null)),
    factors: col((r) => JSON.stringify(r.factors)),
    weights_sha256: col((r) => r.weightsSha256),
    job_hash: col((r) => r.hash),
  });
  const meta = new Map([
    ['tvlens.study', summary.study],
    ['tvlens.commit', summary.commit],
    ['tvlens.version', summary.version],
  ]);
  return new arrow.Table(new arrow.Schema(table.schema.fields, meta), table.batches);
}

/** Writes results.arrow and summary.json into the study folder. */
export function writeResults(dir: string, results: readonly JobResult[], summary: StudySummary): { table: string; summary: string } {
  const table = path.join(dir, 'results.arrow');
  writeFileAtomic(table, arrow.tableToIPC(resultsTable(results, summary), 'file'));
  const json = path.join(dir, 'summary.json');
  writeJsonAtomic(json, summary);
  return { table, summary: json };
}

/** Reads a results table back as plain rows (for tests and the report). */
export function readResultsTable(file: string): Record<string, unknown>[] {
  const t = arrow.tableFromIPC(fs.readFileSync(file));
  return t.toArray().map((row) => row.toJSON() as Record<string, unknown>);
}
