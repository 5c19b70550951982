/**
 * A study: a grid of independent training runs, each followed by the same analyses, declared in
 * one JSON spec. The spec expands to a list of jobs in a fixed order; a job's id names its
 * factors, so a study can be stopped, continued and split across processes (`--shard i/n` runs
 * every n-th job) without any job knowing about another.
 *
 *   {
 *     "name": "emergence",
 *     "grid": [{
 *       "group": "discrete",                       // names the group in ids and tables
 *       "preset": "study-discrete",                // a preset name or a config file (relative to the spec)
 *       "set":  { "train.steps": 2000 },           // overrides for every run of the group
 *       "vary": { "task.format": ["triplet", "pairwise"], "model.layers": [2, 4, 6] },
 *       "exclude": [{ "task.format": "triplet", "model.layers": 4 }],   // cells to leave out
 *       "seeds": [0, 1, 2],
 *       "runs": ["baseline", "tvp-scratch", "tvp-finetune"],   // default ["baseline"]
 *       "tvp": { "lambda": [0.1, 0.3, 1], "finetuneLambda": [1], "layer": -1 }   // for the tvp-* runs
 *     }],
 *     "analysis": { "prompts": 16, "queries": 64, "evalPrompts": 256 }
 *   }
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { type RunConfig, loadRunConfig, resolveRunConfig } from '../train/config.js';
import { readJsonFile } from '../util/fs.js';
import { resolveConfig } from '../util/config.js';

export const RUN_KINDS = ['baseline', 'tvp-scratch', 'tvp-finetune'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

export interface AnalysisSettings {
  /** Demo prompts per task that θ averages over. Default 16. */
  prompts: number;
  /** Zero-shot queries per task (half dev, half test). Default 64. */
  queries: number;
  /** Prompts per condition of the eval suite. Default 256. */
  evalPrompts: number;
  /** Label permutations of the separability test. Default 50. */
  permutations: number;
  /** Also search with the variants a researcher would try: add + centring, and 4 dummy queries. Default true. */
  variants: boolean;
}

export const ANALYSIS_DEFAULTS: Readonly<AnalysisSettings> = Object.freeze({ prompts: 16, queries: 64, evalPrompts: 256, permutations: 50, variants: true });

export interface GridEntry {
  group: string;
  preset: string;
  set: Record<string, unknown>;
  vary: Record<string, unknown[]>;
  /** Cells of the product to leave out (each entry: dotted key → value; a cell matching all its keys is skipped). */
  exclude: Record<string, unknown>[];
  seeds: number[];
  runs: RunKind[];
  /** λ values of the tvp-scratch runs and, unless `finetuneLambda` is given, of the tvp-finetune runs too. */
  tvp: { lambda: number[]; finetuneLambda: number[]; layer: number };
}

export interface StudySpec {
  name: string;
  description: string;
  grid: GridEntry[];
  analysis: AnalysisSettings;
  /** Where the spec was read from: presets named by path resolve against its folder. */
  dir: string;
}

/** One training run and its analyses. */
export interface Job {
  /** Unique in the study, safe as a folder name: group, factors, run kind, λ and seed. */
  readonly id: string;
  /** Position in the study's job list. */
  readonly index: number;
  /** Which (cell, seed) unit the job belongs to: a baseline and its TVP runs form one, and `--shard` splits by unit. */
  readonly unit: number;
  readonly group: string;
  /** The varied factors' values, by dotted key. */
  readonly factors: Readonly<Record<string, string | number | boolean>>;
  readonly kind: RunKind;
  readonly lambda: number | null;
  /** The TVP layer asked for (-1 = the middle layer), null for a baseline. */
  readonly tvpLayer: number | null;
  readonly seed: number;
  readonly config: RunConfig;
  /** A tvp-finetune starts from the baseline of the same cell and seed at half its steps. */
  readonly baselineId: string | null;
  /** sha256 of the job's config and kind: a finished result is reused only when it matches. */
  readonly hash: string;
}

const TOP_KEYS = ['name', 'description', 'grid', 'analysis'];

export function readStudySpec(file: string): StudySpec {
  const json = readJsonFile(file, 'a study spec');
  return resolveStudySpec(json, path.dirname(path.resolve(file)));
}

export function resolveStudySpec(json: unknown, dir: string): StudySpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError('a study spec must be a JSON object');
  const top = json as Record<string, unknown>;
  for (const key of Object.keys(top)) if (!TOP_KEYS.includes(key)) throw new ConfigError(`unknown key. Should be one of: ${TOP_KEYS.join(', ')}`, key);
  if (typeof top.name !== 'string' || !/^[\w.-]+$/.test(top.name)) throw new ConfigError('needs a name of letters, digits, . _ or -', 'name');
  if (!Array.isArray(top.grid) || top.grid.length === 0) throw new ConfigError('needs at least one grid entry', 'grid');
  const grid = top.grid.map((g, i) => gridEntry(g, `grid[${i}]`));
  const groups = grid.map((g) => g.group);
  const twice = groups.find((g, i) => groups.indexOf(g) !== i);
  if (twice) throw new ConfigError(`group '${twice}' appears twice`, 'grid');
  const analysis = resolveConfig(ANALYSIS_DEFAULTS, top.analysis, 'analysis');
  for (const k of ['prompts', 'queries', 'evalPrompts', 'permutations'] as const) {
    if (!Number.isInteger(analysis[k]) || analysis[k] < 2) throw new ConfigError(`must be an integer ≥ 2, got ${analysis[k]}`, `analysis.${k}`);
  }
  return { name: top.name, description: typeof top.description === 'string' ? top.description : '', grid, analysis, dir };
}

function gridEntry(g: unknown, where: string): GridEntry {
  // set and vary are free-form (dotted config keys), so their defaults are null: not checked key by key.
  const free = null as unknown as Record<string, never>;
  const e = resolveConfig<GridEntry>({ group: '', preset: '', set: free, vary: free, exclude: [free], seeds: [0], runs: ['baseline'], tvp: { lambda: [1], finetuneLambda: [], layer: -1 } }, g, where);
  if (e.tvp.finetuneLambda.length === 0) e.tvp.finetuneLambda = e.tvp.lambda;
  e.exclude = e.exclude.filter((x) => x !== null);
  e.exclude.forEach((x, i) => {
    if (typeof x !== 'object' || Array.isArray(x)) throw new ConfigError('expected an object of dotted config keys', `${where}.exclude[${i}]`);
  });
  for (const k of ['set', 'vary'] as const) {
    e[k] ??= {};
    if (typeof e[k] !== 'object' || Array.isArray(e[k])) throw new ConfigError('expected an object of dotted config keys', `${where}.${k}`);
  }
  if (!/^[\w.-]+$/.test(e.group)) throw new ConfigError('needs a group name of letters, digits, . _ or -', `${where}.group`);
  if (!e.preset) throw new ConfigError('needs a preset (a preset name or a config file)', `${where}.preset`);
  if (e.seeds.length === 0 || e.seeds.some((s) => !Number.isSafeInteger(s) || s < 0)) throw new ConfigError(`seeds must be non-negative integers, got ${JSON.stringify(e.seeds)}`, `${where}.seeds`);
  if (new Set(e.seeds).size !== e.seeds.length) throw new ConfigError('lists a seed twice', `${where}.seeds`);
  e.runs.forEach((r, i) => {
    if (!RUN_KINDS.includes(r)) throw new ConfigError(`'${r}' is not valid. Should be one of: ${RUN_KINDS.join(', ')}`, `${where}.runs[${i}]`);
  });
  if (e.runs.includes('tvp-finetune') && !e.runs.includes('baseline')) throw new ConfigError('tvp-finetune starts from the baseline of its cell: add "baseline" to runs', `${where}.runs`);
  for (const k of ['lambda', 'finetuneLambda'] as const) {
    if (e.tvp[k].length === 0 || e.tvp[k].some((l) => !(l > 0))) throw new ConfigError(`λ values must be > 0, got ${JSON.stringify(e.tvp[k])}`, `${where}.tvp.${k}`);
  }
  for (const [k, v] of Object.entries(e.vary)) {
    if (!Array.isArray(v) || v.length === 0) throw new ConfigError('expected a non-empty list of values', `${where}.vary.${k}`);
    if (v.some((x) => !['string', 'number', 'boolean'].includes(typeof x))) throw new ConfigError('values must be strings, numbers or booleans', `${where}.vary.${k}`);
  }
  return e;
}

/** Sets `value` at a dotted key path of a plain object (copying along the way). */
function setPath(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = key.split('.');
  const out = { ...obj };
  out[head] = rest.length ? setPath((obj[head] as Record<string, unknown>) ?? {}, rest.join('.'), value) : value;
  return out;
}

function product(vary: Record<string, unknown[]>): Record<string, string | number | boolean>[] {
  let cells: Record<string, string | number | boolean>[] = [{}];
  for (const [k, values] of Object.entries(vary)) cells = cells.flatMap((c) => values.map((v) => ({ ...c, [k]: v as string | number | boolean })));
  return cells;
}

/** Bumped when a job's analyses change, so finished jobs rerun their analyses (not their training). 2: the emergence diagnostics. */
const ANALYSES_VERSION = 2;

const short = (key: string) => key.split('.').pop()!;
const sha = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');

/** The study's jobs in a fixed order: group, cell, seed, then baseline before its TVP runs. */
export function expandJobs(spec: StudySpec): Job[] {
  const jobs: Job[] = [];
  let units = 0;
  for (const g of spec.grid) {
    const presetFile = path.resolve(spec.dir, g.preset);
    let base: RunConfig;
    try {
      base = loadRunConfig(fs.existsSync(presetFile) ? presetFile : g.preset);
    } catch (e) {
      // loadRunConfig names its own flag (--config); here the value came from the spec.
      if (e instanceof ConfigError && e.key) throw new ConfigError(e.message.slice(e.key.length + 2), `grid '${g.group}'.preset`);
      throw e;
    }
    let plain = base as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(g.set)) plain = setPath(plain, k, v);
    const excluded = (f: Record<string, unknown>) => g.exclude.some((x) => Object.entries(x).every(([k, v]) => f[k] === v));
    for (const factors of product(g.vary).filter((f) => !excluded(f))) {
      let cellPlain = plain;
      for (const [k, v] of Object.entries(factors)) cellPlain = setPath(cellPlain, k, v);
      const cellName = Object.entries(factors).map(([k, v]) => `${short(k)}-${v}`).join('_');
      for (const seed of g.seeds) {
        const config = resolveRunConfigAt(setPath(cellPlain, 'train.seed', seed), `${g.group} ${cellName}`);
        const stem = [g.group, cellName].filter(Boolean).join('_');
        const baselineId = `${stem}_baseline_s${seed}`;
        const unit = units++;
        for (const kind of g.runs) {
          const lambdas = kind === 'baseline' ? [null] : kind === 'tvp-finetune' ? g.tvp.finetuneLambda : g.tvp.lambda;
          for (const lambda of lambdas) {
            const id = kind === 'baseline' ? baselineId : `${stem}_${kind}-l${lambda}_s${seed}`;
            const tvpLayer = kind === 'baseline' ? null : g.tvp.layer;
            jobs.push({
              id,
              index: jobs.length,
              unit,
              group: g.group,
              factors,
              kind,
              lambda,
              tvpLayer,
              seed,
              config,
              baselineId: kind === 'tvp-finetune' ? baselineId : null,
              hash: sha({ config, kind, lambda, tvpLayer, analysis: spec.analysis, analyses: ANALYSES_VERSION }),
            });
          }
        }
      }
    }
  }
  return jobs;
}

function resolveRunConfigAt(plain: Record<string, unknown>, where: string): RunConfig {
  try {
    return resolveRunConfig(plain);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${where}: ${e.message}`);
    throw e;
  }
}

/**
 * The jobs of shard i of n (1-based): every n-th unit, starting at the i-th. A unit is one
 * (cell, seed): its baseline and the TVP runs that fine-tune it stay in one shard, in order.
 */
export function shardJobs(jobs: readonly Job[], shard: { index: number; count: number } | null): Job[] {
  if (!shard) return [...jobs];
  return jobs.filter((j) => j.unit % shard.count === shard.index - 1);
}

/** Parses `i/n` with 1 ≤ i ≤ n. */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const [i, n] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!m || !(n >= 1) || !(i >= 1) || i > n) throw new ConfigError(`expected i/n with 1 ≤ i ≤ n (e.g. 1/4), got '${text}'`, '--shard');
  return { index: i, count: n };
}
