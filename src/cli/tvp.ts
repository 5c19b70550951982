import path from 'node:path';
import fs from 'node:fs';
import { holdsModel } from '../backend/model-folder.js';
import { runTvp } from '../tvp/run.js';
import { type ForeignTvpSummary, runForeignTvp } from '../tvp/foreign.js';
import { PROMPT_FORMATS, type PromptFormat } from '../text/tasks.js';
import { oneOf } from '../util/config.js';
import type { Command } from './command.js';
import { ConfigError } from '../errors.js';
import { MEMORY_OPTION, integerOption, memoryOption, numberOption, required, seedOption } from './command.js';
import { Progress } from './progress.js';
import { describeEval } from './train.js';

export const tvpCommand: Command = {
  name: 'tvp',
  summary: 'train or fine-tune with TVP-loss (L = L_ICL + λ·L_TVP) through standard-op ONNX training artifacts',
  usage: 'tvlens tvp --from <checkpoint.onnx | preset | config.json | model folder> --layer ℓ --lambda λ --steps N --out runs/<name>',
  options: {
    from: { type: 'string', description: 'a checkpoint to fine-tune (fresh optimizer state), a preset/config to train from scratch, or a model folder (model.onnx + tokenizer.json) to fine-tune on text tasks' },
    task: { type: 'string', description: 'model folder: text tasks, comma-separated (shipped names or pairs files; default: every shipped task)' },
    format: { type: 'string', description: `model folder: prompt format, ${PROMPT_FORMATS.join(' or ')}`, default: 'hendel' },
    shots: { type: 'string', description: 'model folder: demos in the few-shot prompt (default 5)' },
    batch: { type: 'string', description: 'model folder: prompts per step (default 32)' },
    lr: { type: 'string', description: 'model folder: peak learning rate (default 1e-3)' },
    out: { type: 'string', description: 'the run folder; artifacts go to <out>/artifacts' },
    layer: { type: 'string', description: 'ℓ: 0 = embeddings, ℓ = output of block ℓ (default: the middle layer)' },
    lambda: { type: 'string', description: 'λ, the weight of L_TVP (default: 1)' },
    steps: { type: 'string', description: 'training steps (default: the config\'s train.steps)' },
    position: { type: 'string', description: 'position in the few-shot prompt that h is read from (default: its last arrow)' },
    detach: { type: 'boolean', description: 'stop gradients into the few-shot pass through h' },
    average: { type: 'string', description: 'average h over groups of this many prompts of one task (default: 1, no averaging)' },
    demos: { type: 'string', description: 'demos k in the few-shot prompt (default: the task config\'s range)' },
    resume: { type: 'boolean', description: 'continue from the newest checkpoint in --out' },
    seed: { type: 'string', description: 'override train.seed' },
    ...MEMORY_OPTION,
  },
  async run(values) {
    const int = (k: string, min: number) => integerOption(values, k, { min });
    const from = required(values, 'from');
    if (isForeign(from)) return runOnFolder(values, from);
    const lambda = numberOption(values, 'lambda');
    if (lambda !== undefined && lambda < 0) throw new ConfigError(`expected a number ≥ 0, got '${values.lambda}'`, '--lambda');
    const tvp = Object.fromEntries(
      Object.entries({ layer: int('layer', 0), lambda, position: int('position', -1), average: int('average', 1), demos: int('demos', 1), detach: values.detach === true || undefined }).filter(([, v]) => v !== undefined),
    );
    const out = path.resolve(required(values, 'out'));
    const steps = int('steps', 1);
    const seed = seedOption(values);
    const maxMemory = memoryOption(values);
    const progress = new Progress('tvp', steps ?? 1, !values.json);
    const summary = await runTvp({
      from: required(values, 'from'),
      out,
      tvp,
      steps,
      seed,
      maxMemory,
      resume: values.resume === true,
      onStep: (s) => {
        progress.total = s.total;
        progress.update(s.step, { loss: s.loss.toFixed(4), 'tok/s': Math.round(s.tokensPerSec).toString() });
      },
      onEval: (line) => progress.log(describeEval(line)),
    });
    if (values.json) console.log(JSON.stringify(summary));
    else console.log(`TVP ${summary.kind} at layer ${summary.tvp.layer}, λ=${summary.tvp.lambda}: ${summary.steps} steps; artifacts in ${path.relative(process.cwd(), path.join(out, 'artifacts'))}; checkpoint ${path.relative(process.cwd(), summary.lastCheckpoint)}.onnx`);
  },
};

/** A model folder (holding model.onnx or decoder_model.onnx), or an .onnx with no tvlens manifest beside it. */
function isForeign(from: string): boolean {
  const st = fs.statSync(from, { throwIfNoEntry: false });
  if (st?.isDirectory()) return holdsModel(from);
  return from.endsWith('.onnx') && !!st && !fs.existsSync(`${from.slice(0, -5)}.json`);
}

async function runOnFolder(values: Record<string, string | boolean | string[] | undefined>, from: string): Promise<void> {
  const int = (k: string, min: number) => integerOption(values, k, { min });
  const lambda = numberOption(values, 'lambda');
  if (lambda !== undefined && lambda < 0) throw new ConfigError(`expected a number ≥ 0, got '${values.lambda}'`, '--lambda');
  const lr = numberOption(values, 'lr');
  if (lr !== undefined && !(lr > 0)) throw new ConfigError(`expected a number > 0, got '${values.lr}'`, '--lr');
  const steps = int('steps', 1) ?? 300;
  const progress = new Progress('tvp', steps, !values.json);
  const summary: ForeignTvpSummary = await runForeignTvp({
    from,
    out: path.resolve(required(values, 'out')),
    tasks: typeof values.task === 'string' ? values.task.split(',') : undefined,
    format: oneOf(values.format as string, PROMPT_FORMATS, '--format') as PromptFormat,
    shots: int('shots', 1),
    layer: int('layer', 1),
    lambda,
    steps,
    batch: int('batch', 1),
    lr,
    seed: seedOption(values),
    onStep: (step, _total, loss) => progress.update(step, { loss: loss.toFixed(4) }),
  });
  if (values.json) return void console.log(JSON.stringify(summary));
  const f = (x: { mean: number; low: number; high: number }) => `${x.mean.toFixed(2)} [${x.low.toFixed(2)}, ${x.high.toFixed(2)}]`;
  console.log(
    [
      `TVP fine-tune of ${path.relative(process.cwd(), from) || from} at layer ${summary.layer}, λ=${summary.lambda}: ${summary.steps} steps on ${summary.tasks.join(', ')} (${summary.format}; ${summary.scoring})`,
      `                 ICL                TV at ℓ=${summary.layer}        zero-shot`,
      `before   ${f(summary.before.icl)}   ${f(summary.before.tv)}   ${summary.before.zeroShot.toFixed(2)}`,
      `after    ${f(summary.after.icl)}   ${f(summary.after.tv)}   ${summary.after.zeroShot.toFixed(2)}`,
      `TV ÷ ICL after: ${summary.ratio.toFixed(2)}; model in ${path.relative(process.cwd(), path.join(summary.out, 'model.onnx'))} (same inputs and outputs), artifacts in ${path.relative(process.cwd(), path.join(summary.out, 'artifacts'))}`,
    ].join('\n'),
  );
}
