/**
 * `writeReport`: one self-contained HTML file over runs, checkpoints and analysis outputs.
 *
 * Figures are SVG made here in Node, so they need no script; the explorer is the one part that
 * runs in the browser. Analyses come from src/analysis: outputs given as files are drawn as they
 * are, and where a model has none the report runs the task-vector search itself (option `analyse`).
 * Bad input never stops the report: each problem becomes a line at the top of the report and on
 * stderr, and every section that can be drawn is drawn.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LocalityResult } from '../analysis/locality.js';
import { InputError } from '../errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { PACKAGE_ROOT, VERSION } from '../version.js';
import { type Gathered, type GatherOptions, type SearchOptions, analysisCommand, gatherAnalyses } from './analyses.js';
import { type Section, esc, page } from './html.js';
import { type ModelInput, describeTask, readInputs, taskSetKey, trainCommand, tvpOf } from './inputs.js';
import { ortAssets } from './ort-assets.js';
import { explorerSection } from './sections/explorer.js';
import { methodsSection } from './sections/methods.js';
import { patchSection } from './sections/patching.js';
import { attributionSection } from './sections/attribution.js';
import { fvSection } from './sections/function-vectors.js';
import { emergenceSection, localitySection } from './sections/locality.js';
import { storyLine, storySection } from './sections/story.js';
import { tvSection, verdict } from './sections/task-vectors.js';
import type { StudySummary } from '../study/results.js';
import { trainingSection } from './sections/training.js';
import { webScript } from './web-script.js';

export interface ReportOptions {
  /** The page title. Default: "tvlens report: <model labels>". */
  readonly title?: string;
  /** Run locality (with its task-vector search) and patching on models that came without those outputs. Default true. */
  readonly analyse?: boolean;
  /** Also run locality on every checkpoint of each run, for the emergence section. Default true. */
  readonly series?: boolean;
  /** Embed the interactive explorer (adds about 5 MB: the model and onnxruntime-web). Default true. */
  readonly explorer?: boolean;
  /** Options of the analyses the report runs itself. Default: the analyses' own defaults. */
  readonly search?: SearchOptions;
  /** The text tasks model folders are analysed on, and their prompt format. */
  readonly text?: GatherOptions['text'];
  /** The command line recorded in the methods section. Default: a writeReport call. */
  readonly command?: string;
  /** The time on the report's one timestamp line. Default: now. */
  readonly now?: Date;
  /**
   * Open with the story section: every model's task-vector curve on one chart per task set, the
   * contrast in numbers, and this study's emergence table and verdicts (null: none). Default: off.
   */
  readonly story?: { readonly study: StudySummary | null };
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
  /** With `story`: one line per model in numbers (ICL, zero-shot, the task vector at its best or TVP layer). */
  readonly storyLines: readonly string[];
  readonly ms: number;
}

export async function writeReport(inputs: readonly string[], outFile: string, options: ReportOptions = {}): Promise<ReportSummary> {
  const t0 = performance.now();
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const { models, problems } = readInputs(inputs);
  if (models.length === 0) throw new InputError(`nothing to report on: ${problems.join('; ') || 'no models given'}`);
  const search = { ...options.search };
  const commands: [string, string][] = [];
  const notes: string[] = [];

  // Task sets: comparisons across models need the same tasks.
  const keys = new Set(models.map((m) => taskSetKey(m.task)));
  const comparable = keys.size <= 1;
  // Not a problem, only a limit on what can be drawn together: said in the methods section.
  if (!comparable) {
    notes.push(
      `The models were trained on different task sets (${models.map((m) => `${m.label}: ${describeTask(m.task)}`).join('; ')}), so locality is not compared side by side across them; each task set is drawn on its own.`,
    );
  }

  const gathered = await gatherAnalyses(models, options, search, problems, log);
  const { searches, localities, patches, series, explorers } = gathered;
  if (options.analyse === false && searches.size < models.length) notes.push('analyse was off: models without a tv-search output have no task-vector section');

  // Sections, in reading order.
  const indexed = models.map((m, i) => ({ m, i }));
  const sections: Section[] = [];
  const add = (s: Section | null, figure: string, command?: string) => {
    if (!s) return;
    sections.push(s);
    if (command) commands.push([figure, command]);
  };
  const story = indexed
    .filter(({ m }) => searches.has(m))
    .map(({ m }) => ({ label: m.label, search: searches.get(m)!.r, tvpLayer: tvpOf(m)?.layer ?? null, command: searches.get(m)!.command }));
  if (options.story) add(storySection(story, options.story.study), 'task vectors of every model, and the study', story.map((s) => s.command).join('; '));
  add(overviewSection(models, gathered), 'overview');
  const trained = models.filter((m) => m.metrics.length).map(trainCommand).join('; ');
  add(trainingSection(models, trainCommand), 'training curves, ICL against step and against shots', trained || undefined);
  const tvRows = indexed
    .filter(({ m }) => searches.has(m))
    .map(({ m, i }) => {
      const loc = localities.get(m);
      return { m, i, ...searches.get(m)!, loc: loc ? { ...loc, pcaLayer: pcaLayer(loc.r) } : null };
    });
  add(tvSection(tvRows), 'task vectors across layers, separability and PCA', [...new Set(tvRows.flatMap((t) => [t.command, t.loc?.command ?? t.command]))].join('; '));
  const located = indexed.filter(({ m }) => localities.has(m)).map(({ m, i }) => ({ m, i, ...localities.get(m)! }));
  add(localitySection(located, comparable), 'locality and strength', located.map((l) => l.command).join('; '));
  const patched = indexed.filter(({ m }) => patches.has(m)).map(({ m }) => ({ label: m.label, ...patches.get(m)! }));
  add(patchSection(patched), 'activation patching', patched.map((p) => p.command).join('; '));
  const attributed = indexed.filter(({ m }) => gathered.attributions.has(m)).map(({ m }) => ({ label: m.label, ...gathered.attributions.get(m)! }));
  add(attributionSection(attributed), 'attribution against exact patching', attributed.map((p) => p.command).join('; '));
  const fvs = indexed.filter(({ m }) => gathered.fvs.has(m)).map(({ m }) => ({ label: m.label, ...gathered.fvs.get(m)! }));
  add(fvSection(fvs), 'function vectors: AIE heat map, FV against TV', fvs.map((p) => p.command).join('; '));
  const seriesRuns = indexed.filter(({ m }) => series.has(m)).map(({ m, i }) => ({ m, i, points: series.get(m)! }));
  const seriesCmd = seriesRuns.map(({ m }) => analysisCommand('locality', m.runDir ?? m.source, search)).join('; ');
  add(emergenceSection(seriesRuns, seriesCmd), 'emergence across checkpoints', seriesCmd);
  for (const m of models) if (m.metrics.length === 0 && m.runDir === null && !m.folder && !m.checkpoint?.manifest.metrics.eval) problems.push(`${m.label}: no metrics (no run folder, and the manifest records none): no training or shots curves for it`);
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
  const scaleFile = path.join(PACKAGE_ROOT, 'docs', 'bench', 'scale.svg');
  const scaleSvg = fs.existsSync(scaleFile) ? fs.readFileSync(scaleFile) : null;
  sections.push(methodsSection({ models, tvlensVersion: VERSION, ortWebVersion: ort?.version ?? null, reportCommand, commands, notes, scaleSvg }));

  for (const p of problems) log(`tvlens report: warning: ${p}`);
  const html = page({
    title: options.title ?? `tvlens report: ${models.map((m) => m.label).join(', ')}`,
    subtitle: models.map((m) => `${m.label}: ${describeTask(m.task)}`).join(' · '),
    stamp: `Generated ${(options.now ?? new Date()).toISOString()} by tvlens ${VERSION}.`,
    problems,
    sections,
    scripts,
  });
  writeFileAtomic(outFile, html);
  const findings = models.filter((m) => searches.has(m)).map((m) => `${m.label}: ${verdict(searches.get(m)!.r, localities.get(m)?.r.average.recovered)}`);
  const storyLines = options.story ? story.map(storyLine) : [];
  return { file: outFile, bytes: Buffer.byteLength(html), sections: sections.map((s) => s.id), problems, findings, storyLines, ms: performance.now() - t0 };
}

function overviewSection(models: readonly ModelInput[], { searches, localities }: Gathered): Section {
  const cards = models.map((m) => {
    const last = m.metrics.at(-1);
    const k = last ? last.eval.train.byShots.length - 1 : null;
    const s = searches.get(m)?.r;
    const items = [
      m.checkpoint ? `checkpoint at step ${m.checkpoint.manifest.step}` : 'no checkpoint',
      last && k !== null ? `ICL ${last.eval.train.metric} ${last.eval.train.byShots[k].toFixed(3)} at ${k} shots (zero-shot ${last.eval.train.byShots[0].toFixed(3)})` : 'no metrics',
      s ? `task vector: best layer ℓ=${s.average.best.layer}, ${s.metric} ${s.average.best.test.toFixed(3)} on test queries (zero-shot ${s.average.baseline.all.mean.toFixed(3)}, ICL ${s.average.icl.mean.toFixed(3)})` : 'no task-vector search',
    ];
    const finding = s ? `<p><strong>${esc(verdict(s, localities.get(m)?.r.average.recovered))}</strong></p>` : '';
    return `<div class="card"><h4>${esc(m.label)}</h4><div>${esc(describeTask(m.task))}</div><ul>${items.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>${finding}</div>`;
  });
  return { id: 'overview', title: 'Overview', html: `<div class="cards">${cards.join('')}</div>` };
}

/** The PCA layer shown first: where tasks separate most (the peak layer can be the embeddings, where all prompts coincide). */
function pcaLayer(r: LocalityResult): number {
  const best = [...r.separability].filter((s) => Number.isFinite(s.difference)).sort((a, b) => b.difference - a.difference || a.layer - b.layer)[0];
  return best?.layer ?? Math.max(0, r.average.peakLayer);
}
