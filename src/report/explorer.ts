/**
 * The explorer's data, made in Node: the injection graph with the checkpoint's weights, each
 * task's task vectors θ[ℓ] (from the analysis layer's `taskVectors`, with the same options as the
 * task-vector search), each task's answer table (tokens) or parameters (regression) and a few
 * sample prompts. The browser half is src/web/explorer.ts; it runs the graph with onnxruntime-web.
 */
import type { Model } from '../api/model.js';
import { analysisTasks } from '../analysis/batches.js';
import { taskVectors } from '../analysis/tv-search.js';
import { InputError } from '../errors.js';
import { MARKER, type Task, type TaskConfig, answer, effectiveDim, promptLayout, specialTokens, taskList, taskPrompts } from '../tasks/index.js';
import { Rng } from '../util/rng.js';
import { injectionModelBytes } from './inject.js';

/** Everything the browser needs for one model; plain JSON. The `kind` part says how prompts are fed. */
export type ExplorerModel = ExplorerCommon & (TokenExplorer | VectorExplorer);

interface ExplorerCommon {
  readonly label: string;
  readonly weightsSha256: string;
  readonly step: number;
  /** The injection graph (see inject.ts), base64. */
  readonly onnx: string;
  /** Its output: `logits` (tokens) or `predictions` (vectors). */
  readonly output: string;
  readonly layers: number;
  readonly dModel: number;
  /** Longest prompt the model takes. */
  readonly maxSeq: number;
  readonly format: 'triplet' | 'pairwise';
  readonly shots: number;
  /** θ as float32 [task, L+1, d_model], little-endian, base64. */
  readonly theta: string;
  /** The slider's starting layer: the searched best layer, else the middle one. */
  readonly defaultLayer: number;
  /** How θ was made, for the methods section. */
  readonly thetaOptions: { readonly prompts: number; readonly shots: number; readonly seed: number; readonly split: string };
}

/** Discrete function tasks: one symbol in, one out; the graph takes `tokens`. */
export interface TokenExplorer {
  readonly kind: 'tokens';
  /** Symbols are 0..vocab−1; the arrow and separator ids follow. */
  readonly vocab: number;
  readonly arrow: number;
  readonly sep: number;
  /** Each task's answer for every symbol. */
  readonly tasks: readonly { readonly name: string; readonly family: string; readonly split: 'train' | 'heldout'; readonly table: readonly number[] }[];
  /** Sample prompts: a task index, the demos (x, y) and the query x. */
  readonly prompts: readonly { readonly task: number; readonly demos: readonly (readonly [number, number])[]; readonly query: number }[];
}

/**
 * Regression tasks (linreg, sine): x a vector of dIn numbers, y a number, fed through the linear
 * read-in as `inputs` [batch, seq, dIn] with `markers` [batch, seq] (MARKER: data, arrow, sep); a y
 * sits in coordinate 0 of its row. The graph's output is `predictions` [batch, seq, 1].
 */
export interface VectorExplorer {
  readonly kind: 'vectors';
  readonly dIn: number;
  /** Coordinates of x the tasks were trained on (the linreg curriculum's end); the rest are 0 in training prompts. */
  readonly effectiveDim: number;
  readonly markers: { readonly data: number; readonly arrow: number; readonly sep: number };
  /** The task's parameters: f(x) = w·x (linreg) or a·sin(b·x + c) (sine), computed in the browser for edited queries. */
  readonly tasks: readonly ({ readonly name: string; readonly split: 'train' | 'heldout' } & ({ readonly family: 'linreg'; readonly w: readonly number[] } | { readonly family: 'sine'; readonly a: number; readonly b: number; readonly c: number }))[];
  /** Sample prompts: a task index, the demos (x, y) and the query x; x rounded to 3 decimals, y = f(x) (plus the config's noise) to 4. */
  readonly prompts: readonly { readonly task: number; readonly demos: readonly (readonly [readonly number[], number])[]; readonly query: readonly number[] }[];
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

/**
 * Regression tasks shown: the search's first train tasks (for fresh-per-prompt kinds, the stand-ins
 * analysisTasks draws) and the first held-out ones. A list of numbers each, so a few are enough.
 */
const VECTOR_TASKS = { train: 8, heldout: 4 } as const;

/** Whether the explorer can show this model: function tasks, x → y with one symbol or one vector each. */
export function explorerSupport(task: TaskConfig): string | null {
  if (task.kind !== 'discrete' && task.kind !== 'linreg' && task.kind !== 'sine') {
    return `the explorer supports function tasks (discrete, linreg, sine: one x in, one y out); this model's tasks are '${task.kind}'`;
  }
  return null;
}

export async function explorerModel(label: string, model: Model, task: TaskConfig, options: ExplorerOptions = {}): Promise<ExplorerModel> {
  const why = explorerSupport(task);
  if (why) throw new InputError(why);
  const m = model.manifest;
  if (!m || !model.weights) throw new InputError(`${label}: the explorer runs a tvlens checkpoint`);
  const L = m.model.layers;
  const D = m.model.dModel;
  const seed = options.seed ?? 0;
  const shots = options.shots ?? task.demos.max;
  const prompts = options.prompts ?? 16;
  const vectors = task.kind !== 'discrete';
  // The search's tasks first (in its order), then the held-out ones. analysisTasks and taskVectors
  // draw per task in list order, so a prefix of the list gets the same tasks and the same θ.
  const train = analysisTasks(task, 'train', vectors ? VECTOR_TASKS.train : undefined, seed);
  const heldout = task.heldoutTasks > 0 ? taskList(task, 'heldout').slice(0, vectors ? VECTOR_TASKS.heldout : undefined) : [];
  const tasks: Task[] = [...train, ...heldout];
  // The same Rng path as tvSearch (a fork of new Rng(seed)), so θ of the train tasks is the search's θ.
  const trainTv = await taskVectors(model.backend, task, train, { prompts, shots, rng: new Rng(seed).fork() });
  const heldTv = heldout.length ? await taskVectors(model.backend, task, heldout, { prompts, shots, rng: new Rng(seed + 1).fork() }) : null;
  const theta: readonly Float32Array[] = [...trainTv.theta, ...(heldTv?.theta ?? [])];
  const flat = new Float32Array(tasks.length * (L + 1) * D);
  theta.forEach((t, i) => flat.set(t, i * (L + 1) * D));

  const rng = new Rng(seed + 2);
  const samples = options.samples ?? 3;
  const lay = promptLayout(task, shots);
  const split = (i: number): 'train' | 'heldout' => (i < train.length ? 'train' : 'heldout');
  const common: ExplorerCommon = {
    label,
    weightsSha256: m.weightsSha256,
    step: m.step,
    onnx: Buffer.from(injectionModelBytes(m, model.weights.params)).toString('base64'),
    output: m.output,
    layers: L,
    dModel: D,
    maxSeq: m.model.maxSeq,
    format: task.format,
    shots,
    theta: Buffer.from(flat.buffer, flat.byteOffset, flat.byteLength).toString('base64'),
    defaultLayer: options.defaultLayer ?? Math.ceil(L / 2),
    thetaOptions: { prompts, shots, seed, split: 'train tasks as in the search; held-out tasks with seed+1' },
  };
  if (vectors) {
    const sampled = tasks.flatMap((t, ti) => {
      const b = taskPrompts(task, t, rng.fork(), samples, shots);
      if (b.kind !== 'vectors') return [];
      const x = (s: number, pos: number) => Array.from(b.inputs.subarray((s * b.seq + pos) * b.dIn, (s * b.seq + pos + 1) * b.dIn), (v) => round(v, 3));
      return Array.from({ length: samples }, (_, s) => {
        // y keeps the drawn noise and follows x's rounding: y + f(rounded x) − f(x).
        const demos = Array.from({ length: shots }, (_, k) => {
          const at = k * lay.block;
          const xs = x(s, at);
          const raw = Array.from(b.inputs.subarray((s * b.seq + at) * b.dIn, (s * b.seq + at + 1) * b.dIn));
          const y = b.inputs[(s * b.seq + at + lay.yAt) * b.dIn];
          return [xs, round(y + answer(t, xs) - answer(t, raw), 4)] as [number[], number];
        });
        return { task: ti, demos, query: x(s, shots * lay.block) };
      });
    });
    const dIn = task.kind === 'linreg' ? task.linreg.dIn : 1;
    return {
      ...common,
      kind: 'vectors',
      dIn,
      effectiveDim: task.kind === 'linreg' ? effectiveDim(task) : 1,
      markers: { ...MARKER },
      tasks: tasks.map((t, i) => {
        if (t.family === 'linreg') return { name: t.name, split: split(i), family: 'linreg', w: [...t.params.w] };
        if (t.family === 'sine') return { name: t.name, split: split(i), family: 'sine', ...t.params };
        throw new InputError(`task '${t.name}' is not a regression task`);
      }),
      prompts: sampled,
    };
  }
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
    ...common,
    kind: 'tokens',
    vocab: task.vocab,
    arrow,
    sep,
    tasks: tasks.map((t, i) => ({ name: t.name, family: t.family, split: split(i), table: Array.from({ length: task.vocab }, (_, x) => answer(t, x)) })),
    prompts: sampled,
  };
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));
