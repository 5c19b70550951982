/**
 * What a report is made from. Each path given is a run folder, a checkpoint (.onnx or its .json
 * manifest), or an analysis output (JSON with an "analysis" field: tv-search, patch, locality).
 * Runs and checkpoints become models; analysis outputs attach to the model whose weights hash
 * they record (or, failing that, to the run folder they sit in). Anything unusable becomes a
 * problem line, and the report draws what it can without it.
 */
import { holdsModel } from '../backend/model-folder.js';
import fs from 'node:fs';
import path from 'node:path';
import { type Manifest, readManifest } from '../checkpoint/checkpoint.js';
import { InputError } from '../errors.js';
import type { TaskConfig } from '../tasks/index.js';
import { checkpointManifests } from '../runs/folder.js';
import type { MetricsLine } from '../train/loop.js';

export interface CheckpointRef {
  /** The .onnx path. */
  readonly file: string;
  readonly manifest: Manifest;
}

/** An analysis output as read from JSON; its shape is owned by src/analysis. */
export interface AnalysisOutput {
  readonly analysis: string;
  readonly [key: string]: unknown;
}

export interface ModelInput {
  /** A short unique name for legends: the run folder's name, or the checkpoint's. */
  readonly label: string;
  /** The path as given. */
  readonly source: string;
  readonly runDir: string | null;
  /** config.json of the run, when there is one. */
  readonly config: Record<string, unknown> | null;
  readonly metrics: readonly MetricsLine[];
  /** Every checkpoint of the run (or the one given), by step. */
  readonly checkpoints: readonly CheckpointRef[];
  /** The checkpoint the analyses and the explorer use: the one given, or the run's newest. */
  readonly checkpoint: CheckpointRef | null;
  readonly task: TaskConfig | null;
  /** A model folder (model.onnx, tokenizer.json): analysed on text tasks, it has no task config or checkpoint. */
  readonly folder?: string;
  /** Analysis outputs given for this model's checkpoints, each with the weights hash it belongs to. */
  readonly outputs: { readonly out: AnalysisOutput; readonly hash: string | null; readonly file: string }[];
}

export interface Inputs {
  readonly models: ModelInput[];
  readonly problems: string[];
}

const isDir = (p: string) => fs.existsSync(p) && fs.statSync(p).isDirectory();

/** Reads every path; never throws for a bad one (it becomes a problem), only when none is usable. */
export function readInputs(paths: readonly string[]): Inputs {
  if (paths.length === 0) throw new InputError('give at least one run folder, checkpoint or analysis output');
  const models: ModelInput[] = [];
  const problems: string[] = [];
  const outputs: { file: string; out: AnalysisOutput }[] = [];
  for (const p of paths) {
    try {
      if (!fs.existsSync(p)) throw new InputError(`${p} does not exist`);
      if (holdsModel(p)) {
        models.push({ label: path.basename(path.resolve(p)), source: p, runDir: null, config: null, metrics: [], checkpoints: [], checkpoint: null, task: null, folder: p, outputs: [] });
        continue;
      }
      if (isDir(p)) {
        models.push(readRun(p, null, problems));
        for (const file of analysisFiles(p)) outputs.push({ file, out: readJson(file) as AnalysisOutput });
        continue;
      }
      const json = p.endsWith('.json') ? (readJson(p) as Record<string, unknown>) : null;
      if (json && typeof json.analysis === 'string') {
        outputs.push({ file: p, out: json as AnalysisOutput });
      } else if (p.endsWith('.onnx') || json?.format === 'tvlens-checkpoint/1') {
        const ckpt = checkpointRef(p);
        const run = runOfCheckpoint(ckpt.file);
        models.push(run ? readRun(run, ckpt, problems) : single(p, ckpt));
      } else {
        throw new InputError(`${p} is neither a run folder, a tvlens checkpoint (.onnx with its .json manifest) nor an analysis output (JSON with an "analysis" field)`);
      }
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      problems.push(e.message);
    }
  }
  uniqueLabels(models);
  for (const { file, out } of outputs.flatMap(expandTable)) attach(file, out, models, problems);
  return { models, problems };
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`${file} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
}

function checkpointRef(p: string): CheckpointRef {
  const manifest = readManifest(p);
  return { file: path.join(path.dirname(p), manifest.onnx), manifest };
}

/** The run folder a checkpoint sits in (…/run/checkpoints/step-N.onnx), if it has a config. */
function runOfCheckpoint(file: string): string | null {
  const dir = path.dirname(path.dirname(path.resolve(file)));
  return path.basename(path.dirname(path.resolve(file))) === 'checkpoints' && fs.existsSync(path.join(dir, 'config.json')) ? dir : null;
}

function single(source: string, ckpt: CheckpointRef): ModelInput {
  return {
    label: `${path.basename(ckpt.file, '.onnx')}`,
    source,
    runDir: null,
    config: null,
    metrics: [],
    checkpoints: [ckpt],
    checkpoint: ckpt,
    task: (ckpt.manifest.task as TaskConfig) ?? null,
    outputs: [],
  };
}

function readRun(dir: string, given: CheckpointRef | null, problems: string[]): ModelInput {
  const configFile = path.join(dir, 'config.json');
  const ckptDir = path.join(dir, 'checkpoints');
  if (!fs.existsSync(configFile) && !fs.existsSync(ckptDir)) throw new InputError(`${dir} is not a run folder (no config.json, no checkpoints/)`);
  const config = fs.existsSync(configFile) ? (readJson(configFile) as Record<string, unknown>) : null;
  const label = path.basename(path.resolve(dir));
  const metrics = readMetrics(path.join(dir, 'metrics.jsonl'), label, problems);
  const checkpoints: CheckpointRef[] = [];
  for (const f of checkpointManifests(dir)) {
    try {
      checkpoints.push(checkpointRef(f));
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      problems.push(`${label}: ${e.message}`);
    }
  }
  checkpoints.sort((a, b) => a.manifest.step - b.manifest.step);
  if (checkpoints.length === 0) problems.push(`${label}: the run has no checkpoints, so nothing can be analysed and there is no explorer for it`);
  const checkpoint = given ?? checkpoints.at(-1) ?? null;
  const task = ((config?.task as TaskConfig | undefined) ?? (checkpoint?.manifest.task as TaskConfig | undefined)) ?? null;
  return { label: given ? `${label}@${given.manifest.step}` : label, source: dir, runDir: dir, config, metrics, checkpoints, checkpoint, task, outputs: [] };
}

function readMetrics(file: string, label: string, problems: string[]): MetricsLine[] {
  if (!fs.existsSync(file)) {
    problems.push(`${label}: no metrics.jsonl, so there are no training curves for it`);
    return [];
  }
  const lines: MetricsLine[] = [];
  const text = fs.readFileSync(file, 'utf8');
  text.split('\n').forEach((l, i) => {
    if (!l.trim()) return;
    try {
      const m = JSON.parse(l) as MetricsLine;
      if (typeof m.step !== 'number' || !m.eval?.train?.byShots) throw new Error('missing step or eval.train');
      lines.push(m);
    } catch (e) {
      problems.push(`${label}: metrics.jsonl line ${i + 1} is unreadable (${(e as Error).message.split('\n')[0]}); skipped`);
    }
  });
  if (lines.length === 0) problems.push(`${label}: metrics.jsonl holds no metrics, so there are no training curves for it`);
  return lines;
}

/** Analysis outputs kept in a run folder: *.json beside config.json, and anything under analysis/. */
function analysisFiles(dir: string): string[] {
  const found: string[] = [];
  for (const d of [dir, path.join(dir, 'analysis')]) {
    if (!isDir(d)) continue;
    for (const f of fs.readdirSync(d).sort()) {
      if (!f.endsWith('.json') || f === 'config.json') continue;
      const file = path.join(d, f);
      try {
        const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { analysis?: unknown };
        if (typeof j.analysis === 'string') found.push(file);
      } catch {
        // not ours
      }
    }
  }
  return found;
}

/** The weights hash an analysis output records, wherever its producer put it. */
export function outputHash(out: AnalysisOutput): string | null {
  const o = out as Record<string, any>;
  const h = o.modelHash ?? o.weightsSha256 ?? o.model?.hash ?? o.model?.weightsSha256 ?? o.model?.modelHash;
  return typeof h === 'string' ? h : null;
}

/** A locality table (`tvlens locality` over a run or several models) holds one locality result per checkpoint. */
function expandTable(x: { file: string; out: AnalysisOutput }): { file: string; out: AnalysisOutput }[] {
  if (x.out.analysis !== 'locality-table') return [x];
  const results = (x.out as { results?: unknown }).results;
  if (!Array.isArray(results)) return [x];
  return results.filter((r): r is AnalysisOutput => typeof r?.analysis === 'string').map((out) => ({ file: x.file, out }));
}

function attach(file: string, out: AnalysisOutput, models: ModelInput[], problems: string[]): void {
  const hash = outputHash(out);
  let model = hash ? models.find((m) => m.checkpoint?.manifest.weightsSha256 === hash) : undefined;
  if (!model && hash) model = models.find((m) => m.checkpoints.some((c) => c.manifest.weightsSha256 === hash));
  if (!model) {
    const abs = path.resolve(file);
    model = models.find((m) => m.runDir && abs.startsWith(path.resolve(m.runDir) + path.sep));
  }
  if (!model && models.length === 1 && !hash) model = models[0];
  if (!model) {
    problems.push(`${file}: this ${out.analysis} output matches none of the models given${hash ? ` (its model hash ${hash.slice(0, 12)}… is not among theirs)` : ''}; give its run folder or checkpoint too`);
    return;
  }
  model.outputs.push({ out, hash, file });
}

/**
 * The output of `kind` given for the checkpoint with weights `hash`: one that records that hash,
 * or one that records none but was given beside this model (assumed to be for its checkpoint).
 */
export function givenOutput(m: ModelInput, kind: string, hash: string | undefined): AnalysisOutput | undefined {
  const own = m.outputs.filter((o) => o.out.analysis === kind).reverse(); // the last one given wins
  return (own.find((o) => o.hash !== null && o.hash === hash) ?? (hash === m.checkpoint?.manifest.weightsSha256 ? own.find((o) => o.hash === null) : undefined))?.out;
}

function uniqueLabels(models: ModelInput[]): void {
  const seen = new Map<string, number>();
  for (const m of models) {
    const n = (seen.get(m.label) ?? 0) + 1;
    seen.set(m.label, n);
    if (n > 1) (m as { label: string }).label = `${m.label} (${n})`;
  }
}

/**
 * What makes two models' tasks comparable: the task universe, not the prompt format or the demo
 * count (pairwise against triplet is a comparison the report is for).
 */
export function taskSetKey(t: TaskConfig | null): string {
  if (!t) return 'unknown';
  const { format: _f, demos: _d, ...rest } = t;
  return JSON.stringify(rest); // configs are resolved over one defaults object, so key order agrees
}

/** The TVP-loss options a run was trained with (manifest extra.tvp, as `tvlens tvp` records them), or null. */
export function tvpOf(m: ModelInput): { layer: number; lambda: number; from: string; kind: string; steps: number | null } | null {
  const rec = m.checkpoint?.manifest.extra?.tvp as { tvp?: { layer?: unknown; lambda?: unknown }; from?: unknown; kind?: unknown } | undefined;
  if (!rec || typeof rec.tvp?.layer !== 'number') return null;
  const loop = (m.config?.train ?? null) as { steps?: number } | null;
  return { layer: rec.tvp.layer, lambda: Number(rec.tvp.lambda), from: String(rec.from), kind: String(rec.kind), steps: loop?.steps ?? null };
}

/** The command that trained a model, as a user would retype it. */
export function trainCommand(m: ModelInput): string {
  if (m.folder) return `(a model folder, trained outside tvlens: ${m.source})`;
  if (!m.runDir) return `(checkpoint ${m.source}; its run folder was not given)`;
  const tvp = tvpOf(m);
  if (tvp) return `tvlens tvp --from ${tvp.from} --layer ${tvp.layer} --lambda ${tvp.lambda}${tvp.steps ? ` --steps ${tvp.steps}` : ''} --out ${m.runDir}`;
  return `tvlens train --config ${path.join(m.runDir, 'config.json')} --out ${m.runDir}`;
}

/** One line describing a task config: "discrete (offset, permutation), vocab 16, triplet". */
export function describeTask(t: TaskConfig | null): string {
  if (!t) return 'unknown tasks';
  const fam = t.kind === 'discrete' ? ` (${t.discrete.families.join(', ')})` : '';
  const vocab = ['discrete', 'hmm', 'dfa'].includes(t.kind) ? `, vocab ${t.vocab}` : '';
  const pool = t.trainTasks > 0 ? `, ${t.trainTasks} train + ${t.heldoutTasks} held-out tasks` : '';
  return `${t.kind}${fam}${vocab}${pool}, ${t.format}, ${t.demos.min === t.demos.max ? t.demos.max : `${t.demos.min}–${t.demos.max}`} demos`;
}
