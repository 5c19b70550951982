/**
 * The one module that talks to onnxruntime-node. Everything else asks it for a Session and hands
 * it plain typed arrays. The browser report has its own runtime module; neither imports the other.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { InputError, RuntimeSetupError } from '../errors.js';
import type { DType, TypedData } from '../graph/ir.js';

// ONNX Runtime's own log lines (a failed CUDA load, optimizer notes) would break the one-line
// errors and the progress bar; failures still reach us as exceptions.
ort.env.logLevel = 'fatal';

export const PROVIDERS = ['cpu', 'cuda'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** A tensor on the host: what tvlens code passes to and gets back from a session. */
export interface HostTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedData;
}

export interface SessionOptions {
  /** Execution provider. Default 'cpu'. */
  readonly provider?: Provider;
  /** Threads inside one op. Default: $TVLENS_THREADS when set, else one per core (`os.availableParallelism()`). */
  readonly threads?: number;
  /** Graph optimisation level. Default 'all'. */
  readonly optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Idle threads spin between the ops of a run and stop at its end, where by default they sleep. For
   * a session run back to back on its own, as a training step is: each of its ~900 ops wakes them.
   */
  readonly spinWithinRun?: boolean;
}

/**
 * The thread count of every session: $TVLENS_THREADS when set (processes that share the machine,
 * such as two study shards on two cores, run faster with one thread each than with two each), else
 * one per core. It is always set explicitly: left to ONNX Runtime (1.30, on a 2-core AMD EPYC VM),
 * the default acted as one thread, leaving half the machine idle (the matmul peak 119–127 GFLOP/s
 * instead of 177–189, and a training step 4.1× a forward pass instead of 3.0–3.2×).
 */
export function sessionThreads(): number {
  const raw = process.env.TVLENS_THREADS;
  if (raw === undefined || raw.trim() === '') return os.availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new RuntimeSetupError(`TVLENS_THREADS should be a whole number of threads (1 or more), got '${raw}'`);
  return n;
}

export class Session {
  private constructor(
    private readonly inner: ort.InferenceSession,
    readonly provider: Provider,
  ) {}

  static async open(model: Uint8Array | string, options: SessionOptions = {}): Promise<Session> {
    const { provider, sessionOptions } = ortSessionOptions(options);
    try {
      const inner =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, sessionOptions)
          : await ort.InferenceSession.create(model, sessionOptions);
      return new Session(inner, provider);
    } catch (e) {
      throw refusal(provider, e instanceof Error ? e.message : String(e));
    }
  }

  get inputNames(): readonly string[] {
    return this.inner.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.inner.outputNames;
  }

  /** Runs the model. `fetch` names the outputs wanted (default: all). */
  async run(feeds: Readonly<Record<string, HostTensor>>, fetch?: readonly string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
    let result: ort.InferenceSession.ReturnType;
    try {
      result = fetch ? await this.inner.run(ortFeeds, fetch as string[]) : await this.inner.run(ortFeeds);
    } catch (e) {
      throw runFailure(e instanceof Error ? e.message : String(e));
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(result)) out[name] = fromOrt(t);
    return out;
  }

  /**
   * `run`, in slices along the batch axis (axis 0 of every feed but those named in `whole`), each
   * fetched output concatenated back along its axis 0. onnxruntime-node runs a model on the main
   * thread, so one run over 16 000 prompts held off SIGTERM, and every progress line, for 80 s;
   * slices are sized from the time the last one took, so each run stays near `targetMs`. Only for
   * graphs whose feeds and fetched outputs all lead with the batch axis.
   */
  async runSliced(
    feeds: Readonly<Record<string, HostTensor>>,
    fetch: readonly string[],
    options: { whole?: readonly string[]; targetMs?: number } = {},
  ): Promise<Record<string, HostTensor>> {
    const named = Object.keys(feeds).filter((k) => !(options.whole ?? []).includes(k) && feeds[k].shape.length > 0);
    const B = named.length ? feeds[named[0]].shape[0] : 0;
    // A feed that does not lead with B (a scalar, a position list) goes whole to every slice.
    const whole = new Set(Object.keys(feeds).filter((k) => !named.includes(k) || feeds[k].shape[0] !== B));
    const rowSize = named.length ? feeds[named[0]].data.length / Math.max(B, 1) : 1;
    let rows = Math.max(1, Math.floor(SLICE_FIRST_VALUES / Math.max(rowSize, 1)));
    if (B <= rows) return this.run(feeds, fetch);
    const targetMs = options.targetMs ?? SLICE_TARGET_MS;
    const parts: Record<string, HostTensor>[] = [];
    for (let n0 = 0; n0 < B; ) {
      const n = Math.min(rows, B - n0);
      const part: Record<string, HostTensor> = {};
      for (const [k, t] of Object.entries(feeds)) part[k] = whole.has(k) ? t : sliceRows(t, n0, n);
      const t0 = performance.now();
      const out = await this.run(part, fetch);
      const ms = performance.now() - t0;
      for (const [k, t] of Object.entries(out)) {
        if (t.shape[0] !== n) throw new Error(`internal: runSliced fetched '${k}' of shape [${t.shape}], which does not lead with the batch axis`);
      }
      parts.push(out);
      n0 += n;
      rows = Math.max(1, Math.min(rows * 4, Math.round((rows * targetMs) / Math.max(ms, 1))));
    }
    return Object.fromEntries(Object.keys(parts[0]).map((k) => [k, concatRows(parts.map((p) => p[k]))]));
  }

  async release(): Promise<void> {
    await this.inner.release();
  }
}

/** ONNX Runtime's options for `options`, checked: shared by `Session` and `WorkerSession`. */
export function ortSessionOptions(options: SessionOptions): { provider: Provider; sessionOptions: ort.InferenceSession.SessionOptions } {
  const provider = options.provider ?? 'cpu';
  if (!PROVIDERS.includes(provider)) {
    throw new RuntimeSetupError(`unknown execution provider '${provider}'. Should be one of: ${PROVIDERS.join(', ')}`);
  }
  const profile = process.env.TVLENS_ORT_PROFILE;
  // ONNX Runtime writes no profile, and says nothing, where the folder is missing.
  if (profile && !fs.statSync(path.dirname(path.resolve(profile)), { throwIfNoEntry: false })?.isDirectory()) {
    throw new RuntimeSetupError(`TVLENS_ORT_PROFILE=${profile}: the folder ${path.dirname(path.resolve(profile))} does not exist`);
  }
  const threads = options.threads ?? sessionThreads();
  // Past a few thousand, ONNX Runtime's thread pool fails to allocate (std::bad_alloc): refuse in words.
  if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new InputError(`threads must be an integer in 1..1024, got ${threads}`);
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    // Fatal only: a failed run reaches us as an exception, which becomes tvlens's one line; at the
    // error level ONNX Runtime also printed its own coloured line on stderr first.
    logSeverityLevel: 4,
    graphOptimizationLevel: options.optimization ?? 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    // Idle pool threads sleep instead of spinning (unless TVLENS_SPIN=1): tvlens alternates between
    // several sessions (a base run and its suffixes, a forward and a training step), and each
    // session's spinning threads took the cores from the next one's run. Measured on 2 cores:
    // a task-vector search 231 → 179 ms, a patch sweep 633 → 422 ms, a foreign search 45 → 20 ms
    // (docs/bench.md). A training step (`spinWithinRun`) runs alone: its threads spin between its ops
    // and stop at its end.
    extra: { session: spinning(options) },
    // $TVLENS_ORT_PROFILE=<prefix>: ONNX Runtime's profiler, one JSON per session (its kernels' times
    // and shapes), written when the session closes. For finding where a run's time goes.
    ...(profile ? { enableProfiling: true, profileFilePrefix: profile } : {}),
  };
  return { provider, sessionOptions };
}

/** ONNX Runtime's session entries for idle threads: its own default under TVLENS_SPIN=1. */
function spinning(options: SessionOptions): Record<string, unknown> {
  if (process.env.TVLENS_SPIN === '1') return {};
  if (options.spinWithinRun) return { intra_op: { allow_spinning: '1' }, force_spinning_stop: '1' };
  return { intra_op: { allow_spinning: '0' } };
}

/** The one-line error for a run ONNX Runtime could not finish. */
export function runFailure(message: string): RuntimeSetupError {
  return new RuntimeSetupError(`ONNX Runtime failed to run the model: ${message.split('\n')[0]}`);
}

/** The one-line error for a model ONNX Runtime would not load. */
export function refusal(provider: Provider, message: string): RuntimeSetupError {
  const msg = message.split('\n')[0];
  if (provider === 'cuda') {
    return new RuntimeSetupError(
      `the CUDA execution provider could not start (${msg}). Install it with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci (or onnxruntime-node-install=cuda12 in .npmrc) on a machine with CUDA 12`,
    );
  }
  return new RuntimeSetupError(`ONNX Runtime refused the model: ${msg}`);
}

/** The first slice of `runSliced` holds about this many feed values per slice; later ones are timed. */
const SLICE_FIRST_VALUES = 4096;
/** How long one sliced ONNX Runtime call aims to take: well inside the 2 s a signal may wait. */
const SLICE_TARGET_MS = 300;

function sliceRows(t: HostTensor, from: number, count: number): HostTensor {
  const row = t.data.length / t.shape[0];
  return { dtype: t.dtype, shape: [count, ...t.shape.slice(1)], data: t.data.subarray(from * row, (from + count) * row) as TypedData };
}

function concatRows(parts: readonly HostTensor[]): HostTensor {
  const total = parts.reduce((a, p) => a + p.data.length, 0);
  const data = new (parts[0].data.constructor as new (n: number) => TypedData)(total);
  let at = 0;
  for (const p of parts) {
    (data as Float32Array).set(p.data as Float32Array, at);
    at += p.data.length;
  }
  return { dtype: parts[0].dtype, shape: [parts.reduce((a, p) => a + p.shape[0], 0), ...parts[0].shape.slice(1)], data };
}

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data as never, t.shape as number[]);
}

function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = t.type as DType;
  let data = t.data as TypedData;
  if (dtype === 'bool') data = new Uint8Array((t.data as Uint8Array).buffer);
  return { dtype, shape: t.dims.slice(), data };
}
