/**
 * The one module that talks to onnxruntime-node. Everything else asks it for a Session and hands
 * it plain typed arrays. The browser report has its own runtime module; neither imports the other.
 */
import os from 'node:os';
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
    const provider = options.provider ?? 'cpu';
    if (!PROVIDERS.includes(provider)) {
      throw new RuntimeSetupError(`unknown execution provider '${provider}'. Should be one of: ${PROVIDERS.join(', ')}`);
    }
    const threads = options.threads ?? sessionThreads();
    // Past a few thousand, ONNX Runtime's thread pool fails to allocate (std::bad_alloc): refuse in words.
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) throw new InputError(`threads must be an integer in 1..1024, got ${threads}`);
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: [provider],
      logSeverityLevel: 3,
      graphOptimizationLevel: options.optimization ?? 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    };
    try {
      const inner =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, sessionOptions)
          : await ort.InferenceSession.create(model, sessionOptions);
      return new Session(inner, provider);
    } catch (e) {
      const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
      if (provider === 'cuda') {
        throw new RuntimeSetupError(
          `the CUDA execution provider could not start (${msg}). Install it with ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci (or onnxruntime-node-install=cuda12 in .npmrc) on a machine with CUDA 12`,
        );
      }
      throw new RuntimeSetupError(`ONNX Runtime refused the model: ${msg}`);
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
      throw new RuntimeSetupError(`ONNX Runtime failed to run the model: ${e instanceof Error ? e.message.split('\n')[0] : e}`);
    }
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(result)) out[name] = fromOrt(t);
    return out;
  }

  async release(): Promise<void> {
    await this.inner.release();
  }
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
