/**
 * `tvlens fv <checkpoint.onnx>`: function vectors (Todd et al. 2024). The AIE of every head on
 * shuffled-label prompts (the layer × head heat map), the top-k heads, the FV's zero-shot score
 * when added at each layer (with 95% intervals), and Hendel's task vector on the same prompts.
 */
import path from 'node:path';
import { type FunctionVectorResult } from '../analysis/function-vectors.js';
import { ConfigError, InputError } from '../errors.js';
import { holdsModel } from '../backend/model-folder.js';
import { openModel as openLibraryModel } from '../api/model.js';
import { SCORING, TEXT_TASKS } from '../text/tasks.js';
import { VERSION } from '../version.js';
import { type CommandValues, command, flag, indexList, int, refuseAllBut } from './command.js';
import { checkOutputFile, isOwnJson } from './limits.js';
import { MODEL_OPTIONS, fmt, openModel, stageProgress, writeOut } from './open.js';

/** The heat map (blocks down, heads across), the chosen heads, and FV against TV per layer. */
export function fvTable(r: FunctionVectorResult): string {
  const H = r.aie[0]?.length ?? 0;
  const line = (label: string, cells: string[]) => `${label.padEnd(10)} ${cells.map((c) => c.padStart(8)).join(' ')}`;
  const o = r.options as { topK: number; prompts: number; shuffled: number; shots: number; queries: number };
  const unit = r.aieUnit === 'p(correct)' ? 'rise in P(correct)' : 'fall in nMSE';
  const aie = [
    `AIE per head (${unit} when the head's mean output on clean prompts is written into shuffled-label prompts; mean over ${r.tasks.length} tasks, ${o.shuffled} shuffled prompts each)`,
    line('', Array.from({ length: H }, (_, h) => `head ${h}`)),
    ...r.aie.map((row, l) => line(`block ${l}`, row.map((v) => fmt(v, 3)))),
  ];
  const heads = `top-${o.topK} heads: ${r.heads.map((h) => `${h.layer}.${h.head} (${fmt(h.aie, 3)})`).join(', ')}`;
  const score = (c: { all: { mean: number; low: number; high: number } }) => `${fmt(c.all.mean)} [${fmt(c.all.low)}, ${fmt(c.all.high)}]`;
  const sweep = [
    `${r.metric} of zero-shot prompts (${o.queries} per task) with the FV added at layer ℓ, against Hendel's task vector written over the arrow at ℓ (same prompts); 95% intervals over tasks`,
    `0-shot ${fmt(r.average.baseline.mean)}, ${o.shots}-shot ICL ${fmt(r.average.icl.mean)}`,
    `${'layer'.padEnd(6)} ${'FV'.padStart(20)} ${'TV'.padStart(20)}`,
    ...r.average.curve.map((c, i) => `${`ℓ=${c.layer}`.padEnd(6)} ${score(c).padStart(20)} ${(r.tv ? score(r.tv.curve[i]) : '–').padStart(20)}`),
    `best layer on dev, scored on test: FV ℓ=${r.average.best.layer} ${fmt(r.average.best.test)}${r.tv ? `; TV ℓ=${r.tv.best.layer} ${fmt(r.tv.best.test)}` : ''}`,
  ];
  return [...aie, '', heads, '', ...sweep, '', r.convention].join('\n');
}

const FV_OPTIONS = {
  ...MODEL_OPTIONS,
  shots: int("demos per prompt, k, at least 2, whose labels are shuffled for the head ranking (default: the task config's largest)", { min: 2 }),
  'top-k': int('heads summed into the function vector', { min: 1 }, 3),
  prompts: int('clean demo prompts per task that the mean head outputs (and θ) average over', { min: 1 }, 16),
  shuffled: int('shuffled-label prompts per task for the head ranking', { min: 1 }, 16),
  queries: int('zero-shot queries per task: the first half is dev, the rest test', { min: 2 }, 64),
  layers: indexList('layers to add the FV at, e.g. 0-4 or 1,3 (default: all, 0..L)'),
  'no-tv': flag("skip Hendel's task-vector comparison"),
} as const;

export const fvCommand = command({
  name: 'fv',
  summary: 'function vectors (Todd et al.): rank heads by indirect effect, add the top heads\' sum at each layer, compare with the task vector',
  usage: 'tvlens fv <checkpoint.onnx> [--top-k 3] [--layers 0-4] [--prompts 16] [--shuffled 16] [--queries 64] [--json]',
  options: FV_OPTIONS,
  async run(values, positionals) {
    if (positionals.length !== 1) throw new InputError(`expected one model, got ${positionals.length}. Usage: ${fvCommand.usage}`);
    const options = {
      split: values.split,
      maxTasks: values.tasks,
      prompts: values.prompts,
      shuffled: values.shuffled,
      shots: values.shots,
      queries: values.queries,
      topK: values['top-k'],
      layers: values.layers,
      seed: values.seed,
      compareTv: !values['no-tv'],
      onProgress: stageProgress('fv', !values.json),
    };
    if (values.out !== undefined) checkOutputFile(values.out, '--out', isOwnJson);
    if (holdsModel(positionals[0])) {
      refuseAllBut(values, ['task', 'format', 'threads', 'shots', 'prompts', 'seed', 'top-k', 'out'], 'does not apply to a model folder, whose function vectors come from its text tasks');
      return fvOnFolder(positionals[0], values);
    }
    const { handle, task, file, model, note } = await openModel(positionals[0], values);
    try {
      const result = await handle.functionVectors(task, options);
      const full = { ...result, tvlensVersion: VERSION, model, task };
      writeOut(values, full);
      if (values.json) console.log(JSON.stringify(full));
      else console.log(`fv ${path.relative(process.cwd(), file)} (${note})\n${fvTable(result)}`);
    } finally {
      await handle.close();
    }
  },
});

/** A model folder with text tasks (--task, --format): function vectors through its suggested hooks. */
async function fvOnFolder(dir: string, values: CommandValues<typeof FV_OPTIONS>): Promise<void> {
  if (values.task === undefined) throw new ConfigError(`${dir} is a model folder: name a text task (${TEXT_TASKS.join(', ')}, or a pairs file)`, '--task');
  const format = values.format;
  await using m = await openLibraryModel(dir, { threads: values.threads });
  const r = await m.functionVectors({ task: values.task.split(','), format, shots: values.shots, prompts: values.prompts, seed: values.seed }, { topK: values['top-k'] });
  writeOut(values, { ...r, tvlensVersion: VERSION, model: { folder: path.resolve(dir), file: m.file, modelHash: m.modelHash } });
  if (values.json) return void console.log(JSON.stringify(r));
  console.log(
    [
      `fv ${path.relative(process.cwd(), dir)} (model folder, ${format} prompts, ${SCORING}): tasks ${r.tasks.join(', ')}`,
      `top heads by AIE: ${r.heads.slice(0, r.topK).map((h) => `L${h.layer}H${h.head} ${h.aie.toFixed(3)}`).join(', ')}`,
      `zero-shot ${fmt(r.zeroShot)}; with the FV added at ℓ: ${r.curve.map((c) => `ℓ=${c.layer} ${fmt(c.accuracy)}`).join('  ')}`,
    ].join('\n'),
  );
}
