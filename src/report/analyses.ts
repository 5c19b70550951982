/**
 * The analyses a report draws: outputs given as files where there are some, else run here with
 * src/analysis on each model's checkpoint (task-vector search, activation patching, the search on
 * every checkpoint of a run), and the explorer's data. A tvlens error in one of them becomes a
 * problem line and that figure is left out; the rest of the report goes on.
 */
import { Engine, fromCheckpoint } from '../analysis/engine.js';
import { type PatchResult, patch } from '../analysis/patching.js';
import { type TvSearchOptions, type TvSearchResult, tvSearch } from '../analysis/tv-search.js';
import { loadCheckpoint } from '../checkpoint/checkpoint.js';
import { InputError, TvlensError } from '../errors.js';
import { type TaskConfig, resolveTaskConfig } from '../tasks/index.js';
import { type ExplorerModel, explorerModel, explorerSupport } from './explorer.js';
import type { CheckpointRef, ModelInput } from './inputs.js';
import type { SeriesPoint } from './sections/task-vectors.js';

export type SearchOptions = Pick<TvSearchOptions, 'prompts' | 'queries' | 'shots' | 'seed' | 'maxTasks'>;

export interface GatherOptions {
  readonly analyse?: boolean;
  readonly series?: boolean;
  readonly explorer?: boolean;
}

export interface Gathered {
  readonly searches: Map<ModelInput, { r: TvSearchResult; command: string }>;
  readonly patches: Map<ModelInput, { r: PatchResult; command: string }>;
  readonly series: Map<ModelInput, SeriesPoint[]>;
  readonly explorers: ExplorerModel[];
}

/** The CLI commands that reproduce a search or a sweep run here. */
export function analysisCommand(kind: 'tv-search' | 'patch', file: string, search: SearchOptions): string {
  const flag = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  return `tvlens ${kind} ${file}${Object.entries(search).map(([k, v]) => ` --${flag(k)} ${v}`).join('')}`;
}

export async function gatherAnalyses(models: readonly ModelInput[], options: GatherOptions, search: SearchOptions, problems: string[], log: (l: string) => void): Promise<Gathered> {
  const tvCommand = (file: string) => analysisCommand('tv-search', file, search);
  const patchCommand = (file: string) => analysisCommand('patch', file, search);
  // Task-vector search and patching: given as outputs, or run here on the model's checkpoint.
  const searches = new Map<ModelInput, { r: TvSearchResult; command: string }>();
  const series = new Map<ModelInput, SeriesPoint[]>();
  const patches = new Map<ModelInput, { r: PatchResult; command: string }>();
  for (const m of models) {
    const given = usable<TvSearchResult>(m, 'tv-search', ['metric', 'tasks', 'average.curve', 'average.best', 'options.shots'], problems);
    if (given) searches.set(m, { r: given, command: `given: ${m.source}` });
    else if (m.checkpoint && options.analyse !== false) {
      const r = await guarded(problems, m.label, () => runSearch(m.checkpoint!, m.task, search, log, m.label));
      if (r) searches.set(m, { r, command: tvCommand(m.checkpoint.file) });
    }
    const givenPatch = usable<PatchResult>(m, 'patch', ['rows', 'columns', 'normalized', 'clean', 'corrupted', 'directionNote'], problems);
    if (givenPatch) patches.set(m, { r: givenPatch, command: `given: ${m.source}` });
    else if (m.checkpoint && options.analyse !== false) {
      const r = await guarded(problems, m.label, () => runPatch(m.checkpoint!, m.task, search, log, m.label));
      if (r) patches.set(m, { r, command: patchCommand(m.checkpoint.file) });
    }
    if (options.series !== false && options.analyse !== false && m.checkpoints.length >= 2) {
      const points: SeriesPoint[] = [];
      for (const c of m.checkpoints) {
        const r = c === m.checkpoint && searches.get(m) ? searches.get(m)!.r : await guarded(problems, `${m.label} step ${c.manifest.step}`, () => runSearch(c, m.task, search, log, `${m.label} step ${c.manifest.step}`));
        if (r) points.push({ step: c.manifest.step, r });
      }
      series.set(m, points);
    }
  }

  // The explorer: models with a checkpoint whose tasks it can show.
  const explorers: ExplorerModel[] = [];
  if (options.explorer !== false) {
    for (const m of models) {
      if (!m.checkpoint) continue;
      const task = safeTask(m.task);
      const why = task ? explorerSupport(task) : 'its task config is missing';
      if (why) {
        problems.push(`${m.label}: no explorer: ${why}`);
        continue;
      }
      // Layer 0 at the arrow is the arrow's own embedding, the same in every prompt (without
      // learned positions), so injecting there changes nothing: start the slider elsewhere.
      const best = searches.get(m)?.r.average.best.layer;
      const s = searches.get(m)?.r.options;
      log(`report: task vectors for the explorer (${m.label})`);
      const ex = await guarded(problems, m.label, () =>
        explorerModel(m.label, loadCheckpoint(m.checkpoint!.file), task!, { prompts: s?.prompts, shots: s?.shots, seed: s?.seed, defaultLayer: best !== undefined && best >= 1 ? best : undefined }),
      );
      if (ex) explorers.push(ex);
    }
  }
  return { searches, patches, series, explorers };
}

/** Runs an analysis on a checkpoint with the analysis engine; timings are dropped (a report must not vary). */
async function analyse<T>(c: CheckpointRef, task: TaskConfig | null, what: string, label: string, log: (l: string) => void, f: (engine: Engine, cfg: TaskConfig) => Promise<T>): Promise<T> {
  const cfg = safeTask(task ?? (c.manifest.task as TaskConfig));
  if (!cfg) throw new InputError(`${label}: its task config is missing or invalid, so the ${what} cannot make prompts`);
  log(`report: ${what} on ${label}`);
  const engine = Engine.open(fromCheckpoint(loadCheckpoint(c.file)));
  try {
    return await f(engine, cfg);
  } finally {
    await engine.release();
  }
}

const runSearch = (c: CheckpointRef, task: TaskConfig | null, search: SearchOptions, log: (l: string) => void, label: string): Promise<TvSearchResult> =>
  analyse(c, task, 'task-vector search', label, log, async (engine, cfg) => {
    const r = await tvSearch(engine, cfg, { ...search });
    return { ...r, cost: { ...r.cost, ms: {} } };
  });

const runPatch = (c: CheckpointRef, task: TaskConfig | null, search: SearchOptions, log: (l: string) => void, label: string): Promise<PatchResult> =>
  analyse(c, task, 'activation patching', label, log, async (engine, cfg) => {
    const { maxTasks, prompts, shots, seed } = search ?? {};
    const r = await patch(engine, cfg, { maxTasks, prompts, shots, seed });
    return { ...r, ms: 0 };
  });

/** A given analysis output, if it has the fields the report draws from; else a problem line. */
function usable<T>(m: ModelInput, kind: string, fields: readonly string[], problems: string[]): T | undefined {
  const out = m.analyses.get(kind);
  if (!out) return undefined;
  const missing = fields.filter((f) => f.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), out) === undefined);
  if (missing.length === 0) return out as unknown as T;
  problems.push(`${m.label}: the ${kind} output given lacks ${missing.join(', ')} (made by another tvlens version?); it is not drawn`);
  m.analyses.delete(kind);
  return undefined;
}

function safeTask(t: TaskConfig | null): TaskConfig | null {
  if (!t) return null;
  try {
    return resolveTaskConfig(t);
  } catch {
    return null;
  }
}

/** Runs `f`; a tvlens error becomes a problem line (the section is left out), anything else is a bug. */
async function guarded<T>(problems: string[], label: string, f: () => Promise<T>): Promise<T | null> {
  try {
    return await f();
  } catch (e) {
    if (!(e instanceof TvlensError)) throw e;
    problems.push(e.message.startsWith(label) ? e.message : `${label}: ${e.message}`);
    return null;
  }
}
