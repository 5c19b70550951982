/**
 * The explorer's data, made in Node: the injection graph with the checkpoint's weights, each
 * task's task vectors θ[ℓ] (from the analysis layer's `taskVectors`, with the same options as the
 * task-vector search), each task's answer table and a few sample prompts. The browser half is
 * src/web/explorer.ts; it runs the graph with onnxruntime-web.
 */
import { Engine, fromCheckpoint } from '../analysis/engine.js';
import { analysisTasks } from '../analysis/batches.js';
import { taskVectors } from '../analysis/tv-search.js';
import type { LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import { InputError } from '../errors.js';
import { type Task, type TaskConfig, answer, promptLayout, specialTokens, taskList, taskPrompts } from '../tasks/index.js';
import { Rng } from '../util/rng.js';
import { injectionModelBytes } from './inject.js';

/** Everything the browser needs for one model; plain JSON. */
export interface ExplorerModel {
  readonly label: string;
  readonly weightsSha256: string;
  readonly step: number;
  /** The injection graph (see inject.ts), base64. */
  readonly onnx: string;
  readonly output: string;
  readonly layers: number;
  readonly dModel: number;
  /** Longest prompt the model takes. */
  readonly maxSeq: number;
  /** Symbols are 0..vocab−1; the arrow and separator ids follow. */
  readonly vocab: number;
  readonly arrow: number;
  readonly sep: number;
  readonly format: 'triplet' | 'pairwise';
  readonly shots: number;
  readonly tasks: readonly { readonly name: string; readonly family: string; readonly split: 'train' | 'heldout'; readonly table: readonly number[] }[];
  /** θ as float32 [task, L+1, d_model], little-endian, base64. */
  readonly theta: string;
  /** Sample prompts: a task index, the demos (x, y) and the query x. */
  readonly prompts: readonly { readonly task: number; readonly demos: readonly (readonly [number, number])[]; readonly query: number }[];
  /** The slider's starting layer: the searched best layer, else the middle one. */
  readonly defaultLayer: number;
  /** How θ was made, for the methods section. */
  readonly thetaOptions: { readonly prompts: number; readonly shots: number; readonly seed: number; readonly split: string };
}

export interface ExplorerOptions {
  /** Demo prompts θ is averaged over, demos per prompt and seed: the search's, by default. */
  readonly prompts?: number;
  readonly shots?: number;
  readonly seed?: number;
  readonly defaultLayer?: number;
  /** Sample prompts per task. Default 3. */
  readonly samples?: number;
}

/** Whether the explorer can show this model: token function tasks (x → y with one symbol each). */
export function explorerSupport(task: TaskConfig): string | null {
  if (task.kind !== 'discrete') return `the explorer supports discrete function tasks (one symbol in, one out); this model's tasks are '${task.kind}'`;
  return null;
}

export async function explorerModel(label: string, ckpt: LoadedCheckpoint, task: TaskConfig, options: ExplorerOptions = {}): Promise<ExplorerModel> {
  const why = explorerSupport(task);
  if (why) throw new InputError(why);
  const m = ckpt.manifest;
  const L = m.model.layers;
  const D = m.model.dModel;
  const seed = options.seed ?? 0;
  const shots = options.shots ?? task.demos.max;
  const prompts = options.prompts ?? 16;
  // The search's tasks first (in its order), then the held-out ones.
  const train = analysisTasks(task, 'train', undefined, seed);
  const heldout = task.heldoutTasks > 0 ? [...taskList(task, 'heldout')] : [];
  const tasks: Task[] = [...train, ...heldout];
  const engine = Engine.open(fromCheckpoint(ckpt));
  let theta: readonly Float32Array[];
  try {
    // The same Rng path as tvSearch (a fork of new Rng(seed)), so θ of the train tasks is the search's θ.
    const trainTv = await taskVectors(engine, task, train, { prompts, shots, rng: new Rng(seed).fork() });
    const heldTv = heldout.length ? await taskVectors(engine, task, heldout, { prompts, shots, rng: new Rng(seed + 1).fork() }) : null;
    theta = [...trainTv.theta, ...(heldTv?.theta ?? [])];
  } finally {
    await engine.release();
  }
  const flat = new Float32Array(tasks.length * (L + 1) * D);
  theta.forEach((t, i) => flat.set(t, i * (L + 1) * D));

  const rng = new Rng(seed + 2);
  const samples = options.samples ?? 3;
  const lay = promptLayout(task, shots);
  const sampled = tasks.flatMap((t, ti) => {
    const b = taskPrompts(task, t, rng.fork(), samples, shots);
    if (b.kind !== 'tokens') return [];
    return Array.from({ length: samples }, (_, s) => {
      const row = (i: number) => Number(b.tokens[s * b.seq + i]);
      const demos = Array.from({ length: shots }, (_, k) => [row(k * lay.block), row(k * lay.block + lay.yAt)] as [number, number]);
      return { task: ti, demos, query: row(shots * lay.block) };
    });
  });
  const { arrow, sep } = specialTokens(task);
  return {
    label,
    weightsSha256: m.weightsSha256,
    step: m.step,
    onnx: Buffer.from(injectionModelBytes(ckpt)).toString('base64'),
    output: m.output,
    layers: L,
    dModel: D,
    maxSeq: m.model.maxSeq,
    vocab: task.vocab,
    arrow,
    sep,
    format: task.format,
    shots,
    tasks: tasks.map((t, i) => ({ name: t.name, family: t.family, split: i < train.length ? 'train' : 'heldout', table: Array.from({ length: task.vocab }, (_, x) => answer(t, x)) })),
    theta: Buffer.from(flat.buffer, flat.byteOffset, flat.byteLength).toString('base64'),
    prompts: sampled,
    defaultLayer: options.defaultLayer ?? Math.ceil(L / 2),
    thetaOptions: { prompts, shots, seed, split: 'train tasks as in the search; held-out tasks with seed+1' },
  };
}
