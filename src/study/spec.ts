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
const MAX_UNITS = 10_000;
const ANALYSIS_MAX = { prompts: 4096, queries: 65536, evalPrompts: 65536, permutations: 100_000 } as const;

export function readStudySpec(file: string): StudySpec {
  const json = readJsonFile(file, 'a study spec');
  return resolveStudySpec(json, path.dirname(path.resolve(file)));
}

export function resolveStudySpec(json: unknown, dir: string): StudySpec {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError('a study spec must be a JSON object');
  const top = json as Record<string, unknown>;
  for (const key of Object.keys(top)) if (!TOP_KEYS.includes(key)) throw new ConfigError(`unknown key. Should be one of: ${TOP_KEYS.join(', ')}`, key);
  if (typeof top.name !== 'string' || !SAFE_NAME.test(top.name)) throw new ConfigError('needs a name of letters, digits, . _ or - (not starting with .)', 'name');
  if (!Array.isArray(top.grid) || top.grid.length === 0) throw new ConfigError('needs at least one grid entry', 'grid');
  const grid = top.grid.map((g, i) => gridEntry(g, `grid[${i}]`));
  const groups = grid.map((g) => g.group);
  const twice = groups.find((g, i) => groups.indexOf(g) !== i);
  if (twice) throw new ConfigError(`group '${twice}' appears twice`, 'grid');
  const analysis = resolveConfig(ANALYSIS_DEFAULTS, top.analysis, 'analysis');
  for (const k of ['prompts', 'queries', 'evalPrompts', 'permutations'] as const) {
    if (!Number.isInteger(analysis[k]) || analysis[k] < 2) throw new ConfigError(`must be an integer ≥ 2, got ${analysis[k]}`, `analysis.${k}`);
    // Checked here, before the first job trains for hours and its analyses then run out of memory.
    if (analysis[k] > ANALYSIS_MAX[k]) throw new ConfigError(`must be at most ${ANALYSIS_MAX[k]} (each job holds them in memory), got ${analysis[k]}`, `analysis.${k}`);
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
  if (!SAFE_NAME.test(e.group)) throw new ConfigError('needs a group name of letters, digits, . _ or - (not starting with .)', `${where}.group`);
  if (!e.preset) throw new ConfigError('needs a preset (a preset name or a config file)', `${where}.preset`);
  if (e.seeds.length === 0 || e.seeds.some((s) => !Number.isSafeInteger(s) || s < 0)) throw new ConfigError(`seeds must be non-negative integers, got ${JSON.stringify(e.seeds)}`, `${where}.seeds`);
  if (new Set(e.seeds).size !== e.seeds.length) throw new ConfigError('lists a seed twice', `${where}.seeds`);
  e.runs.forEach((r, i) => {
    if (!RUN_KINDS.includes(r)) throw new ConfigError(`'${r}' is not valid. Should be one of: ${RUN_KINDS.join(', ')}`, `${where}.runs[${i}]`);
  });
  if (e.runs.includes('tvp-finetune') && !e.runs.includes('baseline')) throw new ConfigError('tvp-finetune starts from the baseline of its cell: add "baseline" to runs', `${where}.runs`);
  for (const k of ['lambda', 'finetuneLambda'] as const) {
    if (e.tvp[k].length === 0 || e.tvp[k].some((l) => typeof l !== 'number' || !(l > 0) || !Number.isFinite(l))) throw new ConfigError(`λ values must be > 0 (numbers), got ${JSON.stringify(e.tvp[k])}`, `${where}.tvp.${k}`);
    const twice = e.tvp[k].find((l, i) => e.tvp[k].indexOf(l) !== i);
    if (twice !== undefined) throw new ConfigError(`lists λ ${twice} twice (as numbers, 0.003 and 3e-3 are one value)`, `${where}.tvp.${k}`);
  }
  // The seeds come from "seeds" alone: a train.seed elsewhere would be overridden without a word.
  for (const k of ['set', 'vary'] as const) {
    if ('train.seed' in e[k]) throw new ConfigError('the seed of each run comes from "seeds"; remove train.seed here and list the seeds there', `${where}.${k}.train.seed`);
  }
  for (const [k, v] of Object.entries(e.vary)) {
    if (!Array.isArray(v) || v.length === 0) throw new ConfigError('expected a non-empty list of values', `${where}.vary.${k}`);
    if (v.some((x) => !['string', 'number', 'boolean'].includes(typeof x))) throw new ConfigError('values must be strings, numbers or booleans', `${where}.vary.${k}`);
    const seen = new Set<unknown>();
    const twice = v.find((x) => seen.size === seen.add(x).size);
    if (twice !== undefined) throw new ConfigError(`lists ${JSON.stringify(twice)} twice (as numbers, 0.003 and 3e-3 are one value): the cell would run twice`, `${where}.vary.${k}`);
  }
  // An exclude names varied keys and values that are in the grid; anything else would exclude nothing.
  e.exclude.forEach((x, i) => {
    if (Object.keys(x).length === 0) throw new ConfigError('is empty: it would exclude every cell', `${where}.exclude[${i}]`);
    for (const [k, v] of Object.entries(x)) {
      const values = e.vary[k];
      if (!values) throw new ConfigError(`'${k}' is not a key of vary (${Object.keys(e.vary).join(', ') || 'none'}): it would exclude nothing`, `${where}.exclude[${i}]`);
      if (!values.includes(v)) throw new ConfigError(`${JSON.stringify(v)} is not among the values of vary.${k} (${values.map((y) => JSON.stringify(y)).join(', ')}): it would exclude nothing`, `${where}.exclude[${i}].${k}`);
    }
  });
  return e;
}

/** Names a spec gives (the study, a group): one safe path component, never "." or ".." or hidden. */
const SAFE_NAME = /^[\w-][\w.-]{0,99}$/;
/** A job id: what becomes its folder under <out>/jobs/. */
const SAFE_ID = /^[\w-][\w.-]{0,199}$/;

/** A factor's value as it appears in a job id: anything but letters, digits, . _ - becomes '-'. */
const idToken = (v: string | number | boolean) => String(v).replace(/[^\w.-]+/g, '-');

/** Checks that a job id is one safe file name (derived ids always are; this is the last guard before a path). */
export function checkJobId(id: string): string {
  if (!SAFE_ID.test(id)) throw new ConfigError(`the job id '${id}' is not a safe folder name (letters, digits, . _ -, at most 200, not starting with .)`, 'grid');
  return id;
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

/**
 * Settings added after studies had run, by dotted path, with the value that keeps their old
 * behaviour: left out of a job's hash at that value, so adding a setting does not rerun every
 * finished job. A new setting with a default belongs here.
 */
const LATER_DEFAULTS: Readonly<Record<string, unknown>> = {
  'train.lmLoss': false,
  'model.attnOnly': false,
  'task.dfa.markov': false,
  'task.dfa.doublyStochastic': false,
};

function hashedConfig(config: RunConfig): unknown {
  const copy = structuredClone(config) as unknown as Record<string, Record<string, unknown>>;
  for (const [key, value] of Object.entries(LATER_DEFAULTS)) {
    const parts = key.split('.');
    const parent = parts.slice(0, -1).reduce<Record<string, unknown> | undefined>((o, k) => o?.[k] as Record<string, unknown> | undefined, copy);
    if (parent && parent[parts[parts.length - 1]] === value) delete parent[parts[parts.length - 1]];
  }
  return copy;
}

const short = (key: string) => idToken(key.split('.').pop()!);
const sha = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');

/** The study's jobs in a fixed order: group, cell, seed, then baseline before its TVP runs. */
export function expandJobs(spec: StudySpec): Job[] {
  const jobs: Job[] = [];
  let units = 0;
  for (const g of spec.grid) {
    // A file beside the spec, else a preset name (a folder of that name does not shadow the preset).
    const presetFile = path.resolve(spec.dir, g.preset);
    let base: RunConfig;
    try {
      base = loadRunConfig(isFile(presetFile) ? presetFile : g.preset);
    } catch (e) {
      // loadRunConfig names its own flag (--config); here the value came from the spec.
      if (e instanceof ConfigError && e.key) throw new ConfigError(e.message.slice(e.key.length + 2), `grid '${g.group}'.preset`);
      throw e;
    }
    let plain = base as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(g.set)) plain = setPath(plain, k, v);
    // The grid's size before it is built: a product of long lists would take minutes (and memory) to list.
    const size = Object.values(g.vary).reduce((a, v) => a * v.length, 1) * g.seeds.length;
    if (size > MAX_UNITS) throw new ConfigError(`spans ${size} (cell, seed) units, more than the ${MAX_UNITS} a study runs; split it into several studies`, `grid '${g.group}'.vary`);
    const excluded = (f: Record<string, unknown>) => g.exclude.some((x) => Object.entries(x).every(([k, v]) => f[k] === v));
    const cells = product(g.vary).filter((f) => !excluded(f));
    if (cells.length === 0) throw new ConfigError(`exclude leaves none of its ${product(g.vary).length} cells to run`, `grid '${g.group}'.exclude`);
    for (const factors of cells) {
      let cellPlain = plain;
      for (const [k, v] of Object.entries(factors)) cellPlain = setPath(cellPlain, k, v);
      const cellName = Object.entries(factors).map(([k, v]) => `${short(k)}-${idToken(v)}`).join('_');
      for (const seed of g.seeds) {
        const config = resolveRunConfigAt(setPath(cellPlain, 'train.seed', seed), `${g.group} ${cellName}`);
        if (g.runs.includes('tvp-finetune')) checkFinetuneStep(config, `${g.group} ${cellName}`);
        const stem = [g.group, cellName].filter(Boolean).join('_');
        const baselineId = `${stem}_baseline_s${seed}`;
        const unit = units++;
        for (const kind of g.runs) {
          const lambdas = kind === 'baseline' ? [null] : kind === 'tvp-finetune' ? g.tvp.finetuneLambda : g.tvp.lambda;
          for (const lambda of lambdas) {
            const id = checkJobId(kind === 'baseline' ? baselineId : `${stem}_${kind}-l${idToken(lambda!)}_s${seed}`);
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
              hash: sha({ config: hashedConfig(config), kind, lambda, tvpLayer, analysis: spec.analysis, analyses: ANALYSES_VERSION }),
            });
          }
        }
      }
    }
  }
  // Two cells whose values differ only in characters an id cannot hold would share a folder.
  const seen = new Map<string, Job>();
  for (const j of jobs) {
    const other = seen.get(j.id);
    if (other) throw new ConfigError(`two jobs get the id '${j.id}' (factors ${JSON.stringify(other.factors)} and ${JSON.stringify(j.factors)}): make the values differ in letters or digits`, `grid '${j.group}'.vary`);
    seen.set(j.id, j);
  }
  return jobs;
}

const isFile = (f: string) => {
  try {
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
};

/** A tvp-finetune starts from its baseline's checkpoint at half the steps: the baseline must write one there. */
function checkFinetuneStep(config: RunConfig, where: string): void {
  const { steps, checkpointEvery } = config.train;
  const half = steps / 2;
  if (!Number.isInteger(half) || (half % checkpointEvery !== 0 && half !== steps)) {
    throw new ConfigError(
      `${where}: tvp-finetune starts from the baseline's checkpoint at step ${half} (half of train.steps ${steps}), which the baseline never writes (train.checkpointEvery ${checkpointEvery}); make steps/2 a multiple of checkpointEvery`,
      'runs',
    );
  }
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
  if (!m || !Number.isSafeInteger(n) || !(n >= 1) || !(i >= 1) || i > n) throw new ConfigError(`expected i/n with 1 ≤ i ≤ n (e.g. 1/4), got '${text}'`, '--shard');
  return { index: i, count: n };
}
