/**
 * onnxruntime-web, packed to run from a report opened as file:// (not cross-origin isolated, no
 * fetches from file://, so one wasm thread and every byte inline): the ESM bundle
 * as text (the page imports it from a Blob URL) and the single-threaded SIMD wasm, gzipped
 * (14 MB → about 3.7 MB) for the page to inflate with DecompressionStream and hand over as bytes.
 * Nothing here imports onnxruntime-web: the report only carries its files.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import zlib from 'node:zlib';
import { RuntimeSetupError } from '../errors.js';

export interface OrtAssets {
  readonly version: string;
  /** dist/ort.wasm.bundle.min.mjs, as text. */
  readonly bundle: string;
  /** dist/ort-wasm-simd-threaded.wasm, gzipped, base64. */
  readonly wasmGzipBase64: string;
}

let cached: OrtAssets | null = null;

/** Reads and packs the files once per process; gzip is deterministic for the same bytes and level. */
export function ortAssets(): OrtAssets {
  if (cached) return cached;
  let dist: string;
  try {
    dist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
  } catch {
    throw new RuntimeSetupError('onnxruntime-web is not installed; the report explorer needs it (npm install)');
  }
  const read = (f: string) => {
    const file = path.join(dist, f);
    if (!fs.existsSync(file)) throw new RuntimeSetupError(`onnxruntime-web has no ${f} in ${dist}; reinstall it (npm ci)`);
    return fs.readFileSync(file);
  };
  const pkg = JSON.parse(fs.readFileSync(path.join(dist, '..', 'package.json'), 'utf8')) as { version: string };
  const wasm = read('ort-wasm-simd-threaded.wasm');
  cached = {
    version: pkg.version,
    bundle: read('ort.wasm.bundle.min.mjs').toString('utf8'),
    // Level 6 is within 2% of level 9 here and several times faster.
    wasmGzipBase64: zlib.gzipSync(wasm, { level: 6 }).toString('base64'),
  };
  return cached;
}
