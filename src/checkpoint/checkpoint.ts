/**
 * Checkpoints: a plain ONNX inference model with the weights as initializers, and a JSON manifest
 * beside it. Hook tensors carry their TransformerLens names inside the model; `exposeOutputs`
 * makes any of them fetchable without re-exporting, so a run that fetches none pays nothing.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { Graph, type TypedData, toOnnxBytes } from '../graph/index.js';
import type { ModelConfig } from '../model/config.js';
import { Transformer, declareParams } from '../model/transformer.js';
import { modelInputs } from '../train/icl-loss.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
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

export const outputName = (cfg: ModelConfig): string => (cfg.output === 'logits' ? 'logits' : 'predictions');

/** The inference graph of `cfg`, hooks named, weights from `params` (or a fresh init from `seed`). */
export function inferenceGraph(cfg: ModelConfig, seed = 0): { graph: Graph; hooks: string[] } {
  const g = new Graph('float32');
  const { output, hooks } = new Transformer(cfg, declareParams(g, cfg, seed)).forward(modelInputs(g, cfg), { nameHooks: true });
  g.output(output, outputName(cfg));
  return { graph: g, hooks: [...hooks.keys()] };
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
  const { graph, hooks } = inferenceGraph(cfg);
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
  const m = JSON.parse(fs.readFileSync(json, 'utf8')) as Manifest;
  if (m.format !== 'tvlens-checkpoint/1') throw new InputError(`${json} is not a tvlens checkpoint manifest`);
  return m;
}
