/**
 * The analyses a report draws: outputs given as files where there are some, else run here with
 * src/analysis on each model's checkpoint: locality (which includes the task-vector search, the
 * metrics, separability and PCA), activation patching, locality on every checkpoint of a run
 * (emergence), and the explorer's data. A tvlens error in one of them becomes a problem line and
 * that figure is left out; the rest of the report goes on.
 */
import { type Model, openModel } from '../api/model.js';
import type { LocalityOptions, LocalityResult } from '../analysis/locality.js';
import type { PatchResult } from '../analysis/patching.js';
import type { AttributionResult } from '../analysis/attribution.js';
import type { FunctionVectorResult } from '../analysis/function-vectors.js';
import type { TvSearchResult } from '../analysis/tv-search.js';
import { InputError, TvlensError } from '../errors.js';
import { type TaskConfig, resolveTaskConfig } from '../tasks/index.js';
import { type TextTaskInput, loadTextTask } from '../text/tasks.js';
import { type ExplorerModel, explorerModel, explorerSupport } from './explorer.js';
import { type AnalysisOutput, type CheckpointRef, type ModelInput, givenOutput } from './inputs.js';

/** Options of the analyses run here, as `tvlens locality` takes them. Defaults: the analyses'. */
export type SearchOptions = Pick<LocalityOptions, 'prompts' | 'queries' | 'shots' | 'seed' | 'maxTasks' | 'permutations'>;

export interface GatherOptions {
  readonly analyse?: boolean;
  /** The text tasks a model folder is analysed on (a shipped task's name, a pairs file, or a list), and their prompt format. */
  readonly text?: Omit<TextTaskInput, 'prompts' | 'shots' | 'seed'>;
  readonly series?: boolean;
  readonly explorer?: boolean;
}

export interface Made<T> {
  readonly r: T;
  /** The command that makes it, or "given: <file>". */
  readonly command: string;
}

export interface SeriesPoint {
  readonly step: number;
  readonly r: LocalityResult;
}

export interface Gathered {
  readonly searches: Map<ModelInput, Made<TvSearchResult>>;
  readonly localities: Map<ModelInput, Made<LocalityResult>>;
  readonly patches: Map<ModelInput, Made<PatchResult>>;
  readonly series: Map<ModelInput, SeriesPoint[]>;
  readonly explorers: ExplorerModel[];
  /** Given (`tvlens fv --out`, `tvlens patch --method attribution --out`), or run here on function tasks. */
  readonly fvs: Map<ModelInput, Made<FunctionVectorResult>>;
  readonly attributions: Map<ModelInput, Made<AttributionResult>>;
}

const FLAGS: Readonly<Record<string, string>> = { maxTasks: 'tasks' };

/** The CLI command that reproduces an analysis run here. */
export function analysisCommand(kind: 'tv-search' | 'patch' | 'locality' | 'fv', file: string, search: SearchOptions): string {
  const opts = Object.entries(search).filter(([k]) => kind === 'locality' || k !== 'permutations');
  return `tvlens ${kind} ${file}${opts.map(([k, v]) => ` --${FLAGS[k] ?? k} ${v}`).join('')}`;
}

const REQUIRED: Readonly<Record<string, readonly string[]>> = {
  'tv-search': ['metric', 'tasks', 'average.curve', 'average.best', 'options.shots'],
  patch: ['rows', 'columns', 'normalized', 'clean', 'corrupted', 'directionNote'],
  locality: ['metric', 'average.strength', 'average.peakLayer', 'separability', 'search.average.curve'],
  'function-vectors': ['metric', 'aie', 'heads', 'average.curve', 'average.best'],
  attribution: ['grids', 'clean', 'corrupted', 'ms'],
};

export async function gatherAnalyses(models: readonly ModelInput[], options: GatherOptions, search: SearchOptions, problems: string[], log: (l: string) => void): Promise<Gathered> {
  const g: Gathered = { searches: new Map(), localities: new Map(), patches: new Map(), series: new Map(), explorers: [], fvs: new Map(), attributions: new Map() };
  const analyse = options.analyse !== false;
  for (const m of models) {
    if (m.folder) {
      if (analyse) await analyseFolder(m, m.folder, options.text, search, g, problems, log);
      continue;
    }
    const c = m.checkpoint;
    const hash = c?.manifest.weightsSha256;
    const label = m.label;
    const loc = made<LocalityResult>(m, 'locality', hash, problems) ?? (c && analyse ? await run(problems, label, () => runLocality(c, m.task, search, log, label), analysisCommand('locality', c.file, search)) : null);
    if (loc) g.localities.set(m, loc);
    const tv = made<TvSearchResult>(m, 'tv-search', hash, problems) ?? (loc ? { r: loc.r.search, command: loc.command } : null);
    if (tv) g.searches.set(m, tv);
    const pt = made<PatchResult>(m, 'patch', hash, problems) ?? (c && analyse ? await run(problems, label, () => runPatch(c, m.task, search, log, label), analysisCommand('patch', c.file, search)) : null);
    if (pt) g.patches.set(m, pt);
    // Function vectors and attribution patching need function tasks (x → y) with demos to shuffle.
    const fnTask = c && analyse && ['discrete', 'linreg', 'sine'].includes(m.task?.kind ?? '') && (m.task?.demos.max ?? 0) >= 2;
    const fv = made<FunctionVectorResult>(m, 'function-vectors', hash, problems) ?? (c && fnTask ? await run(problems, label, () => runFv(c, m.task, search, log, label), analysisCommand('fv', c.file, search)) : null);
    if (fv) g.fvs.set(m, fv);
    const at =
      made<AttributionResult>(m, 'attribution', hash, problems) ??
      (c && fnTask ? await run(problems, label, () => runAttribution(c, m.task, search, log, label), `${analysisCommand('patch', c.file, search)} --method attribution`) : null);
    if (at) g.attributions.set(m, at);
    if (options.series !== false && m.checkpoints.length >= 2) {
      const points: SeriesPoint[] = [];
      for (const k of m.checkpoints) {
        const at = `${label} step ${k.manifest.step}`;
        const r =
          k === c && loc
            ? loc.r
            : (made<LocalityResult>(m, 'locality', k.manifest.weightsSha256, problems)?.r ?? (analyse ? await run(problems, at, () => runLocality(k, m.task, { ...search }, log, at, false), '') : null)?.r);
        if (r) points.push({ step: k.manifest.step, r });
      }
      if (points.length >= 2) g.series.set(m, points);
    }
  }
  if (options.explorer !== false) {
    for (const m of models) {
      const ex = await explorerFor(m, g.searches.get(m)?.r, problems, log);
      if (ex) g.explorers.push(ex);
    }
  }
  return g;
}

/**
 * A model folder, on text tasks through its Model: locality (with its task-vector search) and
 * activation patching on shuffled-label twins, as `tv-search`, `locality` and `patch` run them.
 */
async function analyseFolder(m: ModelInput, dir: string, text: GatherOptions['text'], search: SearchOptions, g: Gathered, problems: string[], log: (l: string) => void): Promise<void> {
  if (!text) {
    problems.push(`${m.label}: a model folder is analysed on text tasks: give them (tvlens report --task antonyms,…)`);
    return;
  }
  const given = ([] as unknown[]).concat(text.task);
  // A task that does not load would fail both analyses alike: one problem line, not one per analysis.
  if (!(await run(problems, m.label, async () => given.map((t) => (typeof t === 'string' ? loadTextTask(t) : t)), ''))) return;
  const input: TextTaskInput = { ...text, shots: search.shots, seed: search.seed, prompts: search.prompts };
  const tasks = given.map((t) => (typeof t === 'string' ? t : 'your pairs')).join(',');
  const flags = `--task ${tasks}${text.format ? ` --format ${text.format}` : ''}`;
  const withModel = async <T>(what: string, f: (model: Model) => Promise<T>): Promise<T> => {
    log(`report: ${what} on ${m.label}`);
    const model = await openModel(dir);
    try {
      return await f(model);
    } finally {
      await model.close();
    }
  };
  const loc = await run(problems, m.label, () => withModel('task-vector search and locality', async (model) => {
    const r = await model.locality(input, { permutations: search.permutations, queries: search.queries, pca: true });
    return { ...r, search: { ...r.search, cost: { ...r.search.cost, ms: {} } } };
  }), `tvlens locality ${dir} ${flags}`);
  if (loc) {
    g.localities.set(m, loc);
    g.searches.set(m, { r: loc.r.search, command: loc.command });
  }
  const pt = await run(problems, m.label, () => withModel('activation patching', async (model) => ({ ...(await model.patch(input)), ms: 0 })), `tvlens patch ${dir} ${flags}`);
  if (pt) g.patches.set(m, pt);
}

/** The explorer's data for a model with a checkpoint whose tasks it can show, θ made as the search made it. */
async function explorerFor(m: ModelInput, searched: TvSearchResult | undefined, problems: string[], log: (l: string) => void): Promise<ExplorerModel | null> {
  if (!m.checkpoint) return null;
  const task = safeTask(m.task);
  const why = task ? explorerSupport(task) : 'its task config is missing';
  if (why) {
    problems.push(`${m.label}: no explorer: ${why}`);
    return null;
  }
  // Layer 0 at the arrow is the arrow's own embedding, the same in every prompt (without learned
  // positions), so injecting there changes nothing: the slider starts at the best layer ≥ 1.
  const best = searched?.average.best.layer;
  const s = searched?.options;
  log(`report: task vectors for the explorer (${m.label})`);
  const file = m.checkpoint.file;
  return (
    (
      await run(
        problems,
        m.label,
        async () => {
          const model = await openModel(file);
          try {
            return await explorerModel(m.label, model, task!, { prompts: s?.prompts, shots: s?.shots, seed: s?.seed, defaultLayer: best !== undefined && best >= 1 ? best : undefined });
          } finally {
            await model.close();
          }
        },
        '',
      )
    )?.r ?? null
  );
}

/** A given output of `kind` for the checkpoint `hash`, if it has the fields the report draws from. */
function made<T>(m: ModelInput, kind: string, hash: string | undefined, problems: string[]): Made<T> | null {
  const out: AnalysisOutput | undefined = givenOutput(m, kind, hash);
  if (!out) return null;
  const missing = REQUIRED[kind].filter((f) => f.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), out) === undefined);
  if (missing.length) {
    problems.push(`${m.label}: the ${kind} output given lacks ${missing.join(', ')} (made by another tvlens version?); it is not drawn`);
    return null;
  }
  const file = m.outputs.find((o) => o.out === out)?.file ?? m.source;
  return { r: out as unknown as T, command: `given: ${file}` };
}

/** Runs an analysis on a checkpoint through its Model (the report opens no backend of its own). */
async function analyseCheckpoint<T>(c: CheckpointRef, task: TaskConfig | null, what: string, label: string, log: (l: string) => void, f: (model: Model, cfg: TaskConfig) => Promise<T>): Promise<T> {
  const cfg = safeTask(task ?? (c.manifest.task as TaskConfig));
  if (!cfg) throw new InputError(`${label}: its task config is missing or invalid, so the ${what} cannot make prompts`);
  log(`report: ${what} on ${label}`);
  const model = await openModel(c.file);
  try {
    return await f(model, cfg);
  } finally {
    await model.close();
  }
}

// Timings differ from run to run; a report must not, so they are dropped.
const runLocality = (c: CheckpointRef, task: TaskConfig | null, search: SearchOptions, log: (l: string) => void, label: string, pca = true): Promise<LocalityResult> =>
  analyseCheckpoint(c, task, 'task-vector search and locality', label, log, async (model, cfg) => {
    const r = await model.locality(cfg, { ...search, pca });
    return { ...r, search: { ...r.search, cost: { ...r.search.cost, ms: {} } } };
  });

const runPatch = (c: CheckpointRef, task: TaskConfig | null, search: SearchOptions, log: (l: string) => void, label: string): Promise<PatchResult> =>
  analyseCheckpoint(c, task, 'activation patching', label, log, async (model, cfg) => {
    const { maxTasks, prompts, shots, seed } = search;
    return { ...(await model.patch(cfg, { maxTasks, prompts, shots, seed })), ms: 0 };
  });

const runFv = (c: CheckpointRef, task: TaskConfig | null, search: SearchOptions, log: (l: string) => void, label: string): Promise<FunctionVectorResult> =>
  analyseCheckpoint(c, task, 'function vectors', label, log, async (model, cfg) => {
    const { maxTasks, prompts, queries, shots, seed } = search;
    const r = await model.functionVectors(cfg, { maxTasks, prompts, shuffled: prompts, queries, shots, seed, topK: Math.min(3, model.config!.layers * model.config!.heads) });
    return { ...r, cost: { ...r.cost, ms: {} } };
  });

const runAttribution = (c: CheckpointRef, task: TaskConfig | null, search: SearchOptions, log: (l: string) => void, label: string): Promise<AttributionResult> =>
  analyseCheckpoint(c, task, 'attribution patching', label, log, async (model, cfg) => {
    const { maxTasks, prompts, shots, seed } = search;
    const r = await model.attributionPatch(cfg, { maxTasks, prompts, shots, seed });
    return { ...r, ms: { attribution: 0, exact: r.ms.exact === null ? null : 0, sessions: 0 } };
  });

function safeTask(t: TaskConfig | null): TaskConfig | null {
  if (!t) return null;
  try {
    return resolveTaskConfig(t);
  } catch {
    return null;
  }
}

/** Runs `f`; a tvlens error becomes a problem line (the figure is left out), anything else is a bug. */
async function run<T>(problems: string[], label: string, f: () => Promise<T>, command: string): Promise<Made<T> | null> {
  try {
    return { r: await f(), command };
  } catch (e) {
    if (!(e instanceof TvlensError)) throw e;
    problems.push(e.message.startsWith(label) ? e.message : `${label}: ${e.message}`);
    return null;
  }
}
