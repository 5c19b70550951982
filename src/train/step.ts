/**
 * The training step: forward, loss, backward and AdamW, run by ONNX Runtime.
 *
 * Two layouts, built from the same pieces:
 * - 'fused': one graph from batch and weights to loss and updated weights; one `run` per step.
 * - 'split': a training model (loss and gradients) and an optimizer model, as in ONNX Runtime's
 *   on-device training artifacts; two `run`s per step, gradients passing through the host.
 * The bench measures both; 'fused' is the default because it is faster (see README).
 */
import { Graph, type Initializer, type TypedData, type Value, gradients, toOnnxBytes } from '../graph/index.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { WorkerSession } from '../runtime/worker-session.js';
import { TvlensError } from '../errors.js';
import { type AdamSlot, FLAT, type FlatLayout, type OptimizerConfig, adamScalarValues, adamScalars, addAdamW, flatLayout, stateName } from './optimizer.js';
import type { OptimizerState } from '../checkpoint/state.js';

/** A graph whose batch inputs and parameters lead to a scalar loss. */
export interface LossProgram {
  readonly graph: Graph;
  readonly loss: Value;
}

export type StepLayout = 'fused' | 'split';


export interface StepResult {
  readonly loss: number;
  readonly gradNorm: number;
}

/** The ONNX models of a step, as bytes: what `tvlens tvp` writes out as training artifacts. */
export interface StepModels {
  /** 'fused': the whole step. 'split': loss and gradients. */
  readonly training: Uint8Array;
  /** 'split' only: the AdamW update. */
  readonly optimizer?: Uint8Array;
  /** 'split' only: the losses alone, no gradients. */
  readonly eval?: Uint8Array;
}

/** `program`: a graph `build` already made, used for the training graph instead of building another. */
export function buildStepModels(build: () => LossProgram, opt: OptimizerConfig, layout: StepLayout, program?: LossProgram): StepModels {
  const evalModel = layout === 'split' ? lossOnlyModel(build()) : undefined;
  const { graph: g, loss } = program ?? build();
  const params = g.params;
  const grads = gradients(loss, params.map((p) => p.value));
  g.output(loss, 'loss');
  if (layout === 'fused') {
    addAdamW(g, slots(params, grads), adamScalars(g), opt, 'flat');
    return { training: toOnnxBytes(g, { paramsAs: 'inputs', name: 'tvlens_train_step' }) };
  }
  grads.forEach((gr, i) => g.output(gr, stateName.grad(params[i].value.name)));
  const o = new Graph(g.floatType);
  const optParams = params.map((p) => o.input(p.value.name, p.value.dtype, p.value.shape));
  const optGrads = params.map((p) => o.input(stateName.grad(p.value.name), p.value.dtype, p.value.shape));
  addAdamW(o, slots(params, optGrads, optParams), adamScalars(o), opt, 'per-parameter');
  return {
    training: toOnnxBytes(g, { paramsAs: 'inputs', name: 'tvlens_training_model' }),
    optimizer: toOnnxBytes(o, { name: 'tvlens_optimizer_model' }),
    eval: evalModel,
  };
}

function lossOnlyModel({ graph, loss }: LossProgram): Uint8Array {
  graph.output(loss, 'loss');
  return toOnnxBytes(graph, { paramsAs: 'inputs', name: 'tvlens_eval_model' });
}

function slots(params: readonly Initializer[], grads: readonly Value[], values?: readonly Value[]): AdamSlot[] {
  return params.map((p, i) => ({ name: p.value.name, param: values ? values[i] : p.value, grad: grads[i], decay: p.decay ?? true }));
}

/** The optimizer state before the first step: `params`, zero moments. */
export function freshState(params: ReadonlyMap<string, TypedData>): OptimizerState {
  const zeros = (d: TypedData) => new (d.constructor as new (n: number) => TypedData)(d.length);
  return { step: 0, params: new Map(params), m: new Map([...params].map(([k, d]) => [k, zeros(d)])), v: new Map([...params].map(([k, d]) => [k, zeros(d)])) };
}

/** A session a step runs on: in this thread, or on a worker thread (`worker: true`). */
type StepSession = Session | WorkerSession;

/** Runs training steps and owns the weights and the optimizer state between them. */
export class Trainer {
  /** Whether every array in `state` came out of a step (the first step's may be a caller's, as a fine-tune's start). */
  private ownsState = false;
  /** Whether a failed step took the state's arrays with it (they were lent to the worker). */
  private lost = false;

  private constructor(
    private readonly training: StepSession,
    private readonly optimizer: StepSession | null,
    private readonly shapes: ReadonlyMap<string, readonly number[]>,
    private readonly opt: OptimizerConfig,
    readonly state: OptimizerState,
    /** Where each parameter sits in the fused step's flat vectors; null when its moments go per parameter. */
    private readonly flat: FlatLayout | null,
  ) {}

  static async create(
    build: () => LossProgram,
    opt: OptimizerConfig,
    options: {
      layout?: StepLayout;
      session?: SessionOptions;
      initial?: OptimizerState;
      models?: StepModels;
      /** Run steps on a worker thread, so that signals and progress are served during a long step. */
      worker?: boolean;
    } = {},
  ): Promise<Trainer> {
    const layout = options.layout ?? 'fused';
    const probe = build(); // the initial weights, the shapes of the parameters, and the training graph
    const models = options.models ?? buildStepModels(build, opt, layout, probe);
    await yieldToSignals();
    // A training step's threads spin within the step (0.95× its time, interleaved; docs/bench.md).
    const session = { spinWithinRun: true, ...options.session };
    const open = (bytes: Uint8Array) => (options.worker ? WorkerSession.open(bytes, session) : Session.open(bytes, session));
    const training = await open(models.training);
    const optimizer = models.optimizer ? await open(models.optimizer) : null;
    await yieldToSignals();
    const shapes = new Map(probe.graph.params.map((p) => [p.value.name, p.value.shape as number[]]));
    const state = options.initial ?? freshState(new Map(probe.graph.params.map((p) => [p.value.name, p.data])));
    const flat = training.inputNames.includes(FLAT.m)
      ? flatLayout(probe.graph.params.map((p) => ({ name: p.value.name, shape: p.value.shape as number[], decay: p.decay ?? true })), opt)
      : null;
    return new Trainer(training, optimizer, shapes, opt, state, flat);
  }

  /** One step on `batch` (feeds by input name) at learning rate `lr`. */
  async step(batch: Readonly<Record<string, HostTensor>>, lr: number): Promise<StepResult> {
    if (this.lost) throw new TvlensError('an earlier step failed after its weights had moved to the worker thread; start again from the last checkpoint');
    const s = this.state;
    const dtype = this.floatType();
    const scalar = (x: number): HostTensor => ({ dtype, shape: [], data: dtype === 'float64' ? Float64Array.of(x) : Float32Array.of(x) });
    const sc = adamScalarValues(this.opt, s.step + 1, lr);
    const scalars = { lr: scalar(sc.lr), 'adam.c1': scalar(sc.c1), 'adam.c2': scalar(sc.c2) };
    const weights = this.weights();
    const moments = this.flat
      ? { [FLAT.m]: this.vector(s.m), [FLAT.v]: this.vector(s.v) }
      : this.tensors((name) => [stateName.m(name), s.m.get(name)!], (name) => [stateName.v(name), s.v.get(name)!]);

    // On a worker, the state's arrays move there instead of being copied, once they are the trainer's
    // own (the outputs of an earlier step): they are replaced by the step's outputs below.
    const lend = (names: readonly string[]) => ({ lend: this.ownsState ? names : [] });
    let out: Record<string, HostTensor>;
    // A failed run keeps the lent arrays: the state is gone, and saying so beats reading empty arrays.
    this.lost = this.ownsState;
    if (!this.optimizer) {
      out = await this.training.run({ ...batch, ...weights, ...moments, ...scalars }, undefined, lend([...Object.keys(weights), ...Object.keys(moments)]));
    } else {
      const grads = await this.training.run({ ...batch, ...weights });
      const gradFeeds = this.tensors((name) => [stateName.grad(name), grads[stateName.grad(name)].data]);
      const lent = [...Object.keys(weights), ...Object.keys(moments), ...Object.keys(gradFeeds)];
      out = { ...(await this.optimizer.run({ ...weights, ...gradFeeds, ...moments, ...scalars }, undefined, lend(lent))), loss: grads.loss };
    }
    if (this.flat) {
      // Each tensor of the state is a view of the step's three output vectors, fed back as they are.
      const [params, m, v] = [FLAT.params, FLAT.m, FLAT.v].map((k) => out[stateName.updated(k)].data);
      for (const e of this.flat.entries) {
        s.params.set(e.name, params.subarray(e.offset, e.offset + e.size));
        s.m.set(e.name, m.subarray(e.offset, e.offset + e.size));
        s.v.set(e.name, v.subarray(e.offset, e.offset + e.size));
      }
    } else {
      for (const name of this.shapes.keys()) {
        s.params.set(name, out[stateName.updated(name)].data);
        s.m.set(name, out[stateName.updated(stateName.m(name))].data);
        s.v.set(name, out[stateName.updated(stateName.v(name))].data);
      }
    }
    s.step++;
    this.lost = false;
    this.ownsState = this.training instanceof WorkerSession;
    return { loss: Number(out.loss.data[0]), gradNorm: Number(out.grad_norm.data[0]) };
  }

  /** The current weights as session feeds (for an evaluation model that takes them as inputs). */
  weights(): Record<string, HostTensor> {
    return this.tensors((name) => [name, this.state.params.get(name)!]);
  }

  async release(): Promise<void> {
    await this.training.release();
    await this.optimizer?.release();
  }

  /** A moment as the flat step's vector: the last step's own output when `map` holds its views in order, else a copy. */
  private vector(map: ReadonlyMap<string, TypedData>): HostTensor {
    const { entries, size } = this.flat!;
    const parts = entries.map((e) => map.get(e.name) as Float32Array | Float64Array);
    const [first, Type] = [parts[0], parts[0].constructor as Float32ArrayConstructor | Float64ArrayConstructor];
    const inPlace = parts.every((d, i) => d.buffer === first.buffer && d.length === entries[i].size && d.byteOffset === first.byteOffset + entries[i].offset * first.BYTES_PER_ELEMENT);
    let data: Float32Array | Float64Array;
    if (inPlace) data = new Type(first.buffer as ArrayBuffer, first.byteOffset, size);
    else {
      data = new Type(size);
      parts.forEach((d, i) => data.set(d, entries[i].offset));
    }
    return { dtype: this.floatType(), shape: [size], data };
  }

  private floatType(): 'float32' | 'float64' {
    return this.state.params.values().next().value instanceof Float64Array ? 'float64' : 'float32';
  }

  private tensors(...entries: ((name: string) => [string, TypedData])[]): Record<string, HostTensor> {
    const dtype = this.floatType();
    const out: Record<string, HostTensor> = {};
    for (const [name, shape] of this.shapes) {
      for (const entry of entries) {
        const [key, data] = entry(name);
        out[key] = { dtype, shape, data };
      }
    }
    return out;
  }
}

/**
 * Lets the event loop run a pending SIGINT / SIGTERM handler between the long synchronous phases
 * of building a large model (its random init, its gradient graph), so a stop is honoured there.
 */
const yieldToSignals = () => new Promise<void>((resolve) => setImmediate(resolve));
