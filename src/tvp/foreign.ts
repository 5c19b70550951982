/**
 * TVP-loss on a foreign model: the paper's natural-language setting. A model folder's ONNX graph is
 * imported twice into one graph that shares its weights (graph/import.ts):
 *
 *   P  k-shot text prompts (Hendel's or Todd's format); L_ICL scores the first answer token of every
 *      demo and of the query; h = P's residual at layer ℓ at its last position
 *   Q  zero-shot prompts of the same tasks, whose last position at layer ℓ is replaced by h; L_TVP
 *      scores the first answer token
 *
 * L = L_ICL + λ·L_TVP is differentiated by our own autodiff and trained through the same standard-op
 * artifacts as `tvlens tvp` (training_model.onnx and optimizer_model.onnx, written to
 * <out>/artifacts and read back). The result is the original ONNX model with its weights replaced:
 * the same inputs, outputs and tensor names, in <out>/model.onnx beside a copy of the tokenizer.
 */
import fs from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { foldFor } from '../backend/foreign-grad.js';
import { holdsModel, readModelFolder } from '../backend/model-folder.js';
import { FileBackend } from '../backend/file.js';
import { searchPromptsFrom } from '../analysis/search-prompts.js';
import { type TvSearchResult, tvSearch } from '../analysis/tv-search.js';
import { InputError } from '../errors.js';
import { type Graph, type TypedData, type Value, op } from '../graph/index.js';
import { type HostArray, importGraph } from '../graph/import.js';
import { residualAtLayer } from '../model/hooks.js';
import type { HostTensor } from '../runtime/session.js';
import type { PromptRecord } from '../tasks/prompt-file.js';
import { type PromptFormat, type TextPrompts, TEXT_TASKS, loadTextTask, textPromptRecords } from '../text/tasks.js';
import { TextTokenizer } from '../text/tokenizer.js';
import { type LossProgram, Trainer, buildStepModels } from '../train/step.js';
import { learningRate, resolveOptimizerConfig } from '../train/optimizer.js';
import { ensureDir, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { Rng } from '../util/rng.js';
import { ARTIFACT_FILES } from './artifacts.js';
import { TVP_INPUTS, pickRows, replaceRows } from './loss.js';

export interface ForeignTvpOptions {
  /** A model folder (model.onnx with tokenizer.json), or its model.onnx. */
  readonly from: string;
  /** The output folder: model.onnx, tokenizer.json, config.json, artifacts/, tvp-summary.json. */
  readonly out: string;
  /** Text tasks (shipped names or pairs files). Default: every shipped task. */
  readonly tasks?: readonly string[];
  readonly format?: PromptFormat;
  /** Demos in P. Default 5. */
  readonly shots?: number;
  /** ℓ (0 = embeddings, ℓ = output of block ℓ−1). Default: the middle, ⌈L/2⌉. */
  readonly layer?: number;
  /** λ. Default 1. */
  readonly lambda?: number;
  /** Default 300. */
  readonly steps?: number;
  /** Prompts per step. Default 32. */
  readonly batch?: number;
  /** Peak learning rate. Default 1e-3. */
  readonly lr?: number;
  readonly seed?: number;
  readonly onStep?: (step: number, total: number, loss: number) => void;
}

/** ICL and TV-at-ℓ accuracy (with 95% intervals) of one model on held-out prompts. */
export interface TvpScores {
  readonly icl: { readonly mean: number; readonly low: number; readonly high: number };
  readonly tv: { readonly mean: number; readonly low: number; readonly high: number };
  readonly zeroShot: number;
}

export interface ForeignTvpSummary {
  readonly from: string;
  readonly out: string;
  readonly layer: number;
  readonly lambda: number;
  readonly steps: number;
  readonly tasks: readonly string[];
  readonly format: PromptFormat;
  readonly before: TvpScores;
  readonly after: TvpScores;
  /** TV at ℓ ÷ ICL, after. */
  readonly ratio: number;
  readonly scoring: string;
}

export async function runForeignTvp(o: ForeignTvpOptions): Promise<ForeignTvpSummary> {
  // model.onnx given on its own opens as the folder it sits in (for its tokenizer and suggested hooks).
  const parent = path.dirname(path.resolve(o.from));
  const asFolder = fs.statSync(o.from, { throwIfNoEntry: false })?.isFile() && holdsModel(parent) && path.resolve(readModelFolder(parent).onnx) === path.resolve(o.from);
  const source = await FileBackend.open(asFolder ? parent : o.from);
  const dir = source.facts.folder?.dir ?? path.dirname(source.facts.file);
  const tokFile = source.facts.folder?.tokenizer ?? path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokFile)) throw new InputError(`${dir} has no tokenizer.json: TVP on a foreign model trains on text tasks and needs the model's tokenizer`);
  const tok = TextTokenizer.load(tokFile);
  const L = source.layers;
  if (L === 0) throw new InputError(`${o.from}: no residual stream found in the graph; give a model folder whose blocks tvlens hooks can find`);
  const layer = o.layer ?? Math.ceil(L / 2);
  if (!Number.isInteger(layer) || layer < 1 || layer > L) throw new InputError(`--layer ${layer} is out of range: this model has layers 1..${L} (ℓ = output of block ℓ−1)`);
  const residTensor = source.tensorOf(residualAtLayer(layer).name);
  checkOut(o.out);
  const format = o.format ?? 'hendel';
  const taskNames = o.tasks ?? [...TEXT_TASKS];
  const tasks = taskNames.map(loadTextTask);
  const shots = o.shots ?? 5;
  const steps = o.steps ?? 300;
  const B = o.batch ?? 32;
  const seed = o.seed ?? 0;
  const lambda = o.lambda ?? 1;
  const train = textPromptRecords(tok, tasks, { format, shots, prompts: Math.max(64, Math.ceil((steps * B) / tasks.length / 4)), seed });
  const heldout = textPromptRecords(tok, tasks, { format, shots, prompts: 32, seed: seed + 1_000_003 });
  const before = await scores(source, heldout, layer);

  const model = source.proto;
  const { layout } = train;
  const Tp = layout.prefix + shots * (layout.query + layout.answer + layout.separator) + layout.query;
  const Tq = layout.prefix + layout.query;
  const [foldP, foldQ] = [await foldFor(model, B, Tp), await foldFor(model, B, Tq)];
  const build = (): LossProgram => lossProgram(model, { B, Tp, Tq, foldP, foldQ, residTensor, lambda });
  const opt = resolveOptimizerConfig({ lr: o.lr ?? 1e-3, warmupSteps: Math.min(30, Math.floor(steps / 10)), schedule: 'cosine' });
  const models = buildStepModels(build, opt, 'split');
  const artifacts = path.join(o.out, 'artifacts');
  ensureDir(artifacts);
  writeFileAtomic(path.join(artifacts, ARTIFACT_FILES.training), models.training);
  writeFileAtomic(path.join(artifacts, ARTIFACT_FILES.optimizer), models.optimizer!);
  const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(artifacts, f)));
  const trainer = await Trainer.create(build, opt, { layout: 'split', worker: true, models: { training: read(ARTIFACT_FILES.training), optimizer: read(ARTIFACT_FILES.optimizer) } });
  try {
    const rng = new Rng(seed);
    const byTask = groupPairs(train.search);
    for (let step = 0; step < steps; step++) {
      const r = await trainer.step(batchFeeds(byTask, rng, B, Tp, Tq, layout, shots), learningRate(opt, step, steps));
      o.onStep?.(step + 1, steps, r.loss);
    }
  } finally {
    await trainer.release();
  }
  writeModel(model, trainer.state.params, path.join(o.out, 'model.onnx'));
  fs.copyFileSync(tokFile, path.join(o.out, 'tokenizer.json'));
  if (source.facts.folder?.config) writeJsonAtomic(path.join(o.out, 'config.json'), source.facts.folder.config);
  await source.close();
  const tuned = await FileBackend.open(o.out);
  const after = await scores(tuned, heldout, layer);
  await tuned.close();
  const summary: ForeignTvpSummary = { from: path.resolve(o.from), out: path.resolve(o.out), layer, lambda, steps, tasks: taskNames, format, before, after, ratio: after.tv.mean / after.icl.mean, scoring: train.scoring };
  writeJsonAtomic(path.join(o.out, 'tvp-summary.json'), summary);
  return summary;
}

/** P and Q passes of one imported model in one graph: L_ICL + λ·L_TVP. */
function lossProgram(model: onnxProto.onnx.ModelProto, c: { B: number; Tp: number; Tq: number; foldP: ReadonlyMap<string, HostArray>; foldQ: ReadonlyMap<string, HostArray>; residTensor: string; lambda: number }): LossProgram {
  const shapes = (T: number) => Object.fromEntries(['input_ids', 'attention_mask', 'position_ids'].map((n) => [n, [c.B, T]]));
  let resid: Value | null = null;
  const p = importGraph(model, shapes(c.Tp), c.foldP, { intervene: (t, v) => (t === c.residTensor ? (resid = v) : v) });
  const g: Graph = p.graph;
  const lossIcl = op.crossEntropy(p.outputs.get('logits')!, g.input('targets', 'int64', [c.B, c.Tp]), g.input('weights', 'float32', [c.B, c.Tp]));
  const h = pickRows(resid!, g.input(TVP_INPUTS.sourcePos, 'int64', [c.B]));
  const patchPos = g.input(TVP_INPUTS.patchPos, 'int64', [c.B]);
  const q = importGraph(model, shapes(c.Tq), c.foldQ, { graph: g, prefix: 'q.', params: p.params, intervene: (t, v) => (t === c.residTensor ? replaceRows(v, patchPos, h) : v) });
  const lossTvp = op.crossEntropy(q.outputs.get('logits')!, g.input('q.targets', 'int64', [c.B, c.Tq]), g.input('q.weights', 'float32', [c.B, c.Tq]));
  g.output(lossIcl, 'loss_icl');
  g.output(lossTvp, 'loss_tvp');
  return { graph: g, loss: op.add(lossIcl, op.mul(lossTvp, c.lambda)) };
}

/** Each task's k-shot and zero-shot records (textPromptRecords writes them in turn). */
function groupPairs(records: readonly PromptRecord[]): PromptRecord[][][] {
  const tasks = new Map<string, PromptRecord[][]>();
  for (let i = 0; i + 1 < records.length; i += 2) {
    const list = tasks.get(records[i].task!) ?? [];
    list.push([records[i], records[i + 1]]);
    tasks.set(records[i].task!, list);
  }
  return [...tasks.values()];
}

function batchFeeds(byTask: readonly PromptRecord[][][], rng: Rng, B: number, Tp: number, Tq: number, layout: TextPrompts['layout'], shots: number): Record<string, HostTensor> {
  const ids = new BigInt64Array(B * Tp);
  const targets = new BigInt64Array(B * Tp);
  const weights = new Float32Array(B * Tp);
  const qIds = new BigInt64Array(B * Tq);
  const qTargets = new BigInt64Array(B * Tq);
  const qWeights = new Float32Array(B * Tq);
  const line = layout.query + layout.answer + layout.separator;
  for (let b = 0; b < B; b++) {
    const list = byTask[rng.int(byTask.length)];
    const [demo, zero] = list[rng.int(list.length)];
    demo.tokens.forEach((t, i) => (ids[b * Tp + i] = BigInt(t)));
    // Every demo's first answer token, and the query's answer, predicted from the position before.
    for (let k = 0; k <= shots; k++) {
      const at = layout.prefix + k * line + layout.query - 1;
      targets[b * Tp + at] = BigInt(k < shots ? demo.tokens[at + 1] : demo.answer!);
      weights[b * Tp + at] = 1;
    }
    zero.tokens.forEach((t, i) => (qIds[b * Tq + i] = BigInt(t)));
    qTargets[b * Tq + Tq - 1] = BigInt(zero.answer!);
    qWeights[b * Tq + Tq - 1] = 1;
  }
  const int = (data: BigInt64Array, T: number): HostTensor => ({ dtype: 'int64', shape: [B, T], data });
  const ones = (T: number) => int(new BigInt64Array(B * T).fill(1n), T);
  const positions = (T: number) => int(BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)), T);
  const at = (p: number): HostTensor => ({ dtype: 'int64', shape: [B], data: new BigInt64Array(B).fill(BigInt(p)) });
  return {
    input_ids: int(ids, Tp), attention_mask: ones(Tp), position_ids: positions(Tp), targets: int(targets, Tp), weights: { dtype: 'float32', shape: [B, Tp], data: weights },
    [TVP_INPUTS.sourcePos]: at(Tp - 1),
    'q.input_ids': int(qIds, Tq), 'q.attention_mask': ones(Tq), 'q.position_ids': positions(Tq), 'q.targets': int(qTargets, Tq), 'q.weights': { dtype: 'float32', shape: [B, Tq], data: qWeights },
    [TVP_INPUTS.patchPos]: at(Tq - 1),
  };
}

/** ICL and TV at ℓ on held-out prompts, by the same search `tvlens tv-search` runs. */
async function scores(source: FileBackend, prompts: TextPrompts, layer: number): Promise<TvpScores> {
  const r: TvSearchResult = await tvSearch(source, null, { given: searchPromptsFrom(prompts.search), layers: [layer] });
  const tv = r.average.curve[0].all;
  return { icl: { mean: r.average.icl.mean, low: r.average.icl.low, high: r.average.icl.high }, tv: { mean: tv.mean, low: tv.low, high: tv.high }, zeroShot: r.average.baseline.all.mean };
}

/** The original model with its float initializers replaced by `params` (same names): same inputs and outputs. */
function writeModel(model: onnxProto.onnx.ModelProto, params: ReadonlyMap<string, TypedData>, file: string): void {
  const copy = onnxProto.onnx.ModelProto.decode(onnxProto.onnx.ModelProto.encode(model).finish());
  for (const t of copy.graph!.initializer ?? []) {
    const data = params.get(t.name!);
    if (!data) continue;
    t.rawData = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    t.floatData = [];
  }
  writeFileAtomic(file, onnxProto.onnx.ModelProto.encode(copy).finish());
}

/** The output folder must be new or empty, or one this command wrote (its summary is there). */
function checkOut(out: string): void {
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory()) throw new InputError(`--out ${out} is a file; give a folder`);
  const entries = fs.readdirSync(out);
  if (entries.length > 0 && !entries.includes('tvp-summary.json')) throw new InputError(`--out ${out} holds files tvlens did not write (${entries.slice(0, 3).join(', ')}); give a new or empty folder`);
}
