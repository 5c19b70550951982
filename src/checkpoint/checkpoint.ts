/**
 * Checkpoints: a plain ONNX inference model with the weights as initializers, and a JSON manifest
 * beside it. Hook tensors carry their TransformerLens names inside the model; `exposeOutputs`
 * makes any of them fetchable without re-exporting, so a run that fetches none pays nothing.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { InputError } from '../errors.js';
import { inlineExternalData } from './external-data.js';
import { type TypedData, toOnnxBytes } from '../graph/index.js';
import type { ModelConfig } from '../model/config.js';
import { inferenceGraph, outputName } from '../model/inference.js';
import { paramNames } from '../model/transformer.js';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { VERSION } from '../version.js';

export interface Manifest {
  readonly format: 'tvlens-checkpoint/1';
  readonly tvlensVersion: string;
  /** The ONNX file this manifest describes, relative to the manifest. */
  readonly onnx: string;
  readonly step: number;
  readonly seed: number;
  readonly model: ModelConfig;
  readonly task: unknown;
  readonly train?: unknown;
  readonly metrics: { readonly train?: Record<string, number>; readonly eval?: unknown };
  /** sha256 of the weights: each parameter's name and raw little-endian bytes, in name order. */
  readonly weightsSha256: string;
  /** Name of the main output: 'logits' or 'predictions'. */
  readonly output: string;
  readonly hooks: readonly string[];
  /** Anything else a producer records (the TVP options of a TVP run, for example). */
  readonly extra?: Record<string, unknown>;
}

export function weightsHash(params: ReadonlyMap<string, TypedData>): string {
  const h = createHash('sha256');
  for (const name of [...params.keys()].sort()) {
    const d = params.get(name)!;
    h.update(name);
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex');
}

/**
 * Writes `<file>.onnx` and `<file>.json` atomically (each to a temporary file, then renamed;
 * the manifest last, so a manifest never points at a missing model).
 */
export function writeCheckpoint(
  file: string,
  cfg: ModelConfig,
  params: ReadonlyMap<string, TypedData>,
  fields: Omit<Manifest, 'format' | 'tvlensVersion' | 'onnx' | 'model' | 'weightsSha256' | 'output' | 'hooks'>,
): Manifest {
  const { graph, hooks } = inferenceGraph(cfg, null);
  const paramData = new Map([...params].map(([k, v]) => [k, v instanceof Float32Array ? v : Float32Array.from(v as Float64Array)]));
  const manifest: Manifest = {
    format: 'tvlens-checkpoint/1',
    tvlensVersion: VERSION,
    onnx: `${path.basename(file)}.onnx`,
    model: cfg,
    weightsSha256: weightsHash(paramData),
    output: outputName(cfg),
    hooks,
    ...fields,
  };
  writeFileAtomic(`${file}.onnx`, toOnnxBytes(graph, { paramData, name: 'tvlens', metadata: { tvlens_version: VERSION, weights_sha256: manifest.weightsSha256, step: String(fields.step) } }));
  writeJsonAtomic(`${file}.json`, manifest);
  return manifest;
}

/** Reads a checkpoint's manifest, given either the .onnx or the .json path. */
export function readManifest(file: string): Manifest {
  const json = file.endsWith('.onnx') ? file.slice(0, -5) + '.json' : file;
  if (!fs.existsSync(json)) throw new InputError(`no manifest beside ${file} (expected ${json})`);
  const m = readJsonFile(json, 'a tvlens checkpoint manifest') as Manifest;
  if (typeof m !== 'object' || m === null || m.format !== 'tvlens-checkpoint/1') throw new InputError(`${json} is not a tvlens checkpoint manifest`);
  if (typeof m.onnx !== 'string' || typeof m.model !== 'object' || m.model === null || typeof m.weightsSha256 !== 'string') {
    throw new InputError(`${json} is a damaged checkpoint manifest (it lacks onnx, model or weightsSha256)`);
  }
  return m;
}

export interface LoadedCheckpoint {
  readonly manifest: Manifest;
  /** The .onnx path. */
  readonly file: string;
  /** The decoded model (decoded once: a backend runs it as it is and rewrites it for hooks). */
  readonly model: onnxProto.onnx.ModelProto;
  /** The weights, by parameter name, read from the model's initializers. */
  readonly params: Map<string, Float32Array>;
}

/**
 * Reads a tvlens checkpoint (the .onnx or its .json) and checks its weights against the manifest's
 * hash: the manifest is read once and the file decoded once. `manifest` skips the read when the
 * caller has it already.
 */
export function loadCheckpoint(file: string, manifest: Manifest = readManifest(file)): LoadedCheckpoint {
  const onnxFile = path.join(path.dirname(file), manifest.onnx);
  if (!fs.existsSync(onnxFile)) throw new InputError(`the manifest names ${onnxFile}, which does not exist`);
  const { model } = readOnnxFile(onnxFile);
  const all = initializers(model);
  // The weights are the model's parameters; the graph's other initializers are its constants.
  const params = new Map(paramNames(manifest.model).filter((n) => all.has(n)).map((n) => [n, all.get(n)!]));
  const hash = weightsHash(params);
  if (hash !== manifest.weightsSha256) {
    throw new InputError(`${onnxFile}: its weights hash ${hash.slice(0, 12)}… does not match the manifest's ${manifest.weightsSha256.slice(0, 12)}…`);
  }
  return { manifest, file: onnxFile, model, params };
}

/** The float32 initializers of an ONNX model, by name. */
export function readInitializers(bytes: Uint8Array, where: string): Map<string, Float32Array> {
  return initializers(decodeModel(bytes, where));
}

function initializers(model: onnxProto.onnx.ModelProto): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const t of model.graph?.initializer ?? []) {
    if (t.dataType !== 1 || !t.name) continue;
    const raw = t.rawData && t.rawData.length ? t.rawData : null;
    const data = raw ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) : Float32Array.from(t.floatData ?? []);
    out.set(t.name, data);
  }
  return out;
}

/**
 * An ONNX file as bytes that refer to no other file: its external data (if any) read from inside
 * its own folder only and copied in (external-data.ts), so ONNX Runtime never resolves a path.
 */
export function readOnnxFile(file: string): { bytes: Uint8Array; model: onnxProto.onnx.ModelProto } {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new InputError(`${file} does not exist`);
  }
  if (!st.isFile()) throw new InputError(`${file} is not a regular file`);
  const bytes = new Uint8Array(fs.readFileSync(file));
  const model = decodeModel(bytes, file);
  if (inlineExternalData(model, file) === 0) return { bytes, model };
  return { bytes: onnxProto.onnx.ModelProto.encode(model).finish(), model };
}

/** Decodes ONNX bytes, with a clear error when they are not an ONNX model. */
export function decodeModel(bytes: Uint8Array, where: string): onnxProto.onnx.ModelProto {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnxProto.onnx.ModelProto.decode(bytes);
  } catch {
    throw new InputError(`${where} is not an ONNX model (it does not parse as a ModelProto)`);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0) throw new InputError(`${where} is not an ONNX model (it has no graph)`);
  return model;
}
