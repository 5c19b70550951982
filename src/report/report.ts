/**
 * `writeReport`: one self-contained HTML file over runs, checkpoints and analysis outputs.
 *
 * Figures are SVG made here in Node, so they need no script; the explorer is the one part that
 * runs in the browser. Analyses come from src/analysis: outputs given as files are drawn as they
 * are, and where a model has none the report runs the task-vector search itself (option `analyse`).
 * Bad input never stops the report: each problem becomes a line at the top of the report and on
 * stderr, and every section that can be drawn is drawn.
 */
import path from 'node:path';
import { Engine, fromCheckpoint } from '../analysis/engine.js';
import { type PatchResult, patch } from '../analysis/patching.js';
import { type TvSearchOptions, type TvSearchResult, tvSearch } from '../analysis/tv-search.js';
import { loadCheckpoint } from '../checkpoint/checkpoint.js';
import { InputError, TvlensError } from '../errors.js';
import { type TaskConfig, resolveTaskConfig } from '../tasks/index.js';
import { writeFileAtomic } from '../util/fs.js';
import { VERSION } from '../version.js';
import { type ExplorerModel, explorerModel, explorerSupport } from './explorer.js';
import { type Section, esc, page } from './html.js';
import { type CheckpointRef, type ModelInput, describeTask, readInputs, taskSetKey, trainCommand } from './inputs.js';
import { ortAssets } from './ort-assets.js';
import { compareSection } from './sections/compare.js';
import { explorerSection } from './sections/explorer.js';
import { methodsSection } from './sections/methods.js';
import { patchSection } from './sections/patching.js';
import { type SeriesPoint, emergenceSection, tvSection, verdict } from './sections/task-vectors.js';
import { shotsSection, trainingSection } from './sections/training.js';
import { webScript } from './web-script.js';

export interface ReportOptions {
  /** The page title. Default: "tvlens report: <model labels>". */
  readonly title?: string;
  /** Run the task-vector search on models that came without a tv-search output. Default true. */
  readonly analyse?: boolean;
  /** Also search every checkpoint of each run, for the emergence section. Default true. */
  readonly series?: boolean;
  /** Embed the interactive explorer (adds about 5 MB: the model and onnxruntime-web). Default true. */
  readonly explorer?: boolean;
  /** Options of the searches the report runs itself. Default: the search's defaults. */
  readonly search?: Pick<TvSearchOptions, 'prompts' | 'queries' | 'shots' | 'seed' | 'maxTasks'>;
  /** The command line recorded in the methods section. Default: a writeReport call. */
  readonly command?: string;
  /** The time on the report's one timestamp line. Default: now. */
  readonly now?: Date;
  /** Where problems and progress go. Default: stderr. Pass () => {} to silence. */
  readonly log?: (line: string) => void;
}

export interface ReportSummary {
  readonly file: string;
  readonly bytes: number;
  /** Section ids, in order. */
  readonly sections: readonly string[];
  /** What could not be drawn, and why. */
  readonly problems: readonly string[];
  /** One sentence per model on what the task-vector search found (for a console summary). */
  readonly findings: readonly string[];
  readonly ms: number;
}

export async function writeReport(inputs: readonly string[], outFile: string, options: ReportOptions = {}): Promise<ReportSummary> {
  const t0 = performance.now();
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { models, problems } = readInputs(inputs);
  if (models.length === 0) throw new InputError(`nothing to report on: ${problems.join('; ') || 'no models given'}`);
  const search = { ...options.search };
  const flags = Object.entries(search).map(([k, v]) => ` --${k} ${v}`).join('');
  const tvCommand = (file: string) => `tvlens tv-search ${file}${flags}`;
  const patchCommand = (file: string) => `tvlens patch ${file}${flags}`;
  const commands: [string, string][] = [];
  const notes: string[] = [];

  // Task sets: comparisons across models need the same tasks.
  const keys = new Set(models.map((m) => taskSetKey(m.task)));
  const comparable = keys.size <= 1;
  if (!comparable) {
    problems.push(
      `the models were trained on different task sets (${models.map((m) => `${m.label}: ${describeTask(m.task)}`).join('; ')}), so they are not compared side by side; each is drawn on its own`,
    );
  }

  // Task-vector search: given as output, or run here on the model's checkpoint.
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
  if (options.analyse === false && [...searches.keys()].length < models.length) notes.push('analyse was off: models without a tv-search output have no task-vector section');

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

  // Sections, in reading order.
  const indexed = models.map((m, i) => ({ m, i }));
  const trainCmd = trainCommand;
  const sections: Section[] = [];
  const add = (s: Section | null, figure: string, command?: string) => {
    if (!s) return;
    sections.push(s);
    if (command) commands.push([figure, command]);
  };
  add(overviewSection(models, searches), 'overview');
  add(trainingSection(models, trainCmd), 'training curves, ICL against step', models.filter((m) => m.metrics.length).map(trainCmd).join('; '));
  add(shotsSection(models), 'ICL against shots', models.filter((m) => m.metrics.length).map(trainCmd).join('; ') || undefined);
  const tvModels = indexed.filter(({ m }) => searches.has(m)).map(({ m, i }) => ({ m, i, ...searches.get(m)! }));
  add(tvSection(tvModels), 'task-vector accuracy against layer', tvModels.map((t) => t.command).join('; '));
  if (comparable) add(compareSection(tvModels), 'models compared', tvModels.map((t) => t.command).join('; '));
  const patched = indexed.filter(({ m }) => patches.has(m)).map(({ m }) => ({ label: m.label, ...patches.get(m)! }));
  add(patchSection(patched), 'activation patching', patched.map((p) => p.command).join('; '));
  const seriesRuns = indexed.filter(({ m }) => series.has(m)).map(({ m, i }) => ({ m, i, points: series.get(m)! }));
  const seriesCmd = seriesRuns.map(({ m }) => m.checkpoints.map((c) => tvCommand(c.file)).join('; ')).join('; ');
  add(emergenceSection(seriesRuns, seriesCmd), 'emergence across checkpoints', seriesCmd);
  for (const m of models) if (m.metrics.length === 0 && m.runDir === null && !m.checkpoint?.manifest.metrics.eval) problems.push(`${m.label}: no metrics (no run folder, and the manifest records none): no training or shots curves for it`);
  let ort = null;
  let scripts: string[] = [];
  if (explorers.length) {
    ort = ortAssets();
    const ex = explorerSection(explorers, ort, await webScript('explorer'));
    sections.push(ex.section);
    scripts = ex.scripts;
    notes.push(
      'The explorer runs an injection graph built from each checkpoint: the same weights, plus inputs tv, tv_layer_mask and tv_pos that write a vector over one position of the residual stream at the chosen layer (all zeros = the checkpoint unchanged).',
    );
  }
  const reportCommand = options.command ?? `writeReport(${JSON.stringify(inputs)}, ${JSON.stringify(outFile)})`;
  sections.push(methodsSection({ models, tvlensVersion: VERSION, ortWebVersion: ort?.version ?? null, reportCommand, commands, notes }));

  for (const p of problems) log(`tvlens report: warning: ${p}`);
  const html = page({
    title: options.title ?? `tvlens report: ${models.map((m) => m.label).join(', ')}`,
    subtitle: esc(models.map((m) => `${m.label}: ${describeTask(m.task)}`).join(' · ')),
    stamp: `Generated ${(options.now ?? new Date()).toISOString()} by tvlens ${VERSION}.`,
    problems,
    sections,
    scripts,
  });
  writeFileAtomic(outFile, html);
  const findings = models.filter((m) => searches.has(m)).map((m) => `${m.label}: ${verdict(searches.get(m)!.r)}`);
  return { file: outFile, bytes: Buffer.byteLength(html), sections: sections.map((s) => s.id), problems, findings, ms: performance.now() - t0 };
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

const runSearch = (c: CheckpointRef, task: TaskConfig | null, search: ReportOptions['search'], log: (l: string) => void, label: string): Promise<TvSearchResult> =>
  analyse(c, task, 'task-vector search', label, log, async (engine, cfg) => {
    const r = await tvSearch(engine, cfg, { ...search });
    return { ...r, cost: { ...r.cost, ms: {} } };
  });

const runPatch = (c: CheckpointRef, task: TaskConfig | null, search: ReportOptions['search'], log: (l: string) => void, label: string): Promise<PatchResult> =>
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

function overviewSection(models: readonly ModelInput[], searches: Map<ModelInput, { r: TvSearchResult }>): Section {
  const cards = models.map((m) => {
    const last = m.metrics.at(-1);
    const k = last ? last.eval.train.byShots.length - 1 : null;
    const s = searches.get(m)?.r;
    const items = [
      m.checkpoint ? `checkpoint at step ${m.checkpoint.manifest.step}` : 'no checkpoint',
      last && k !== null ? `ICL ${last.eval.train.metric} ${last.eval.train.byShots[k].toFixed(3)} at ${k} shots (zero-shot ${last.eval.train.byShots[0].toFixed(3)})` : 'no metrics',
      s ? `task vector: best layer ℓ=${s.average.best.layer}, ${s.metric} ${s.average.best.test.toFixed(3)} on test queries (zero-shot ${s.average.baseline.all.mean.toFixed(3)}, ICL ${s.average.icl.mean.toFixed(3)})` : 'no task-vector search',
    ];
    const finding = s ? `<p><strong>${esc(verdict(s))}</strong></p>` : '';
    return `<div class="card"><h4>${esc(m.label)}</h4><div>${esc(describeTask(m.task))}</div><ul>${items.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>${finding}</div>`;
  });
  return { id: 'overview', title: 'Overview', html: `<div class="cards">${cards.join('')}</div>` };
}
