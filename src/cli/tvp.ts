import path from 'node:path';
import fs from 'node:fs';
import { holdsModel } from '../backend/model-folder.js';
import { runTvp } from '../tvp/run.js';
import { type ForeignTvpSummary, runForeignTvp } from '../tvp/foreign.js';
import { PROMPT_FORMATS } from '../text/tasks.js';
import { type CommandValues, MEMORY_OPTION, choice, command, flag, int, num, refuseGiven, required, seed, text } from './command.js';
import { Progress } from './progress.js';
import { describeEval } from './train.js';

const TVP_OPTIONS = {
  from: text('a checkpoint to fine-tune (fresh optimizer state), a preset/config to train from scratch, or a model folder (model.onnx + tokenizer.json) to fine-tune on text tasks'),
  task: text('model folder: text tasks, comma-separated (shipped names or pairs files; default: every shipped task)'),
  format: choice(`model folder: prompt format, ${PROMPT_FORMATS.join(' or ')}`, PROMPT_FORMATS, 'hendel'),
  shots: int('model folder: demos in the few-shot prompt (default 5)'),
  batch: int('model folder: prompts per step (default 32)'),
  lr: num('model folder: peak learning rate (default 1e-3)', { positive: true }),
  out: text('the run folder; artifacts go to <out>/artifacts'),
  layer: int('ℓ: 0 = embeddings, ℓ = output of block ℓ (default: the middle layer)', { min: 0 }),
  lambda: num('λ, the weight of L_TVP (default: 1)', { min: 0 }),
  steps: int("training steps (default: the config's train.steps)"),
  position: int('position in the few-shot prompt that h is read from (default: its last arrow)', { min: -1 }),
  detach: flag('stop gradients into the few-shot pass through h'),
  average: int('average h over groups of this many prompts of one task (default: 1, no averaging)'),
  demos: int("demos k in the few-shot prompt (default: the task config's range)"),
  resume: flag('continue from the newest checkpoint in --out'),
  seed: seed('override train.seed'),
  ...MEMORY_OPTION,
} as const;

export const tvpCommand = command({
  name: 'tvp',
  summary: 'train or fine-tune with TVP-loss (L = L_ICL + λ·L_TVP) through standard-op ONNX training artifacts',
  usage: 'tvlens tvp --from <checkpoint.onnx | preset | config.json | model folder> --layer ℓ --lambda λ --steps N --out runs/<name>',
  options: TVP_OPTIONS,
  async run(values) {
    const from = required(values.from, 'from');
    if (isForeign(from)) {
      refuseGiven(values, ['position', 'detach', 'average', 'demos', 'resume', 'max-memory'], 'applies to a tvlens checkpoint, preset or config, not a model folder');
      return runOnFolder(values, from);
    }
    refuseGiven(values, ['task', 'format', 'shots', 'batch', 'lr'], 'applies to a model folder (--from <dir> with model.onnx and tokenizer.json)');
    const { layer, lambda, position, average, demos } = values;
    const tvp = Object.fromEntries(Object.entries({ layer, lambda, position, average, demos, detach: values.detach || undefined }).filter(([, v]) => v !== undefined));
    const out = path.resolve(required(values.out, 'out'));
    const progress = new Progress('tvp', values.steps ?? 1, !values.json);
    const summary = await runTvp({
      from,
      out,
      tvp,
      steps: values.steps,
      seed: values.seed,
      maxMemory: values['max-memory'],
      resume: values.resume,
      onStep: (s) => {
        progress.total = s.total;
        progress.update(s.step, { loss: s.loss.toFixed(4), 'tok/s': Math.round(s.tokensPerSec).toString() });
      },
      onEval: (line) => progress.log(describeEval(line)),
    });
    if (values.json) console.log(JSON.stringify(summary));
    else console.log(`TVP ${summary.kind} at layer ${summary.tvp.layer}, λ=${summary.tvp.lambda}: ${summary.steps} steps; artifacts in ${path.relative(process.cwd(), path.join(out, 'artifacts'))}; checkpoint ${path.relative(process.cwd(), summary.lastCheckpoint)}.onnx`);
  },
});

/** A model folder (holding model.onnx or decoder_model.onnx), or an .onnx with no tvlens manifest beside it. */
function isForeign(from: string): boolean {
  const st = fs.statSync(from, { throwIfNoEntry: false });
  if (st?.isDirectory()) return holdsModel(from);
  return from.endsWith('.onnx') && !!st && !fs.existsSync(`${from.slice(0, -5)}.json`);
}

async function runOnFolder(values: CommandValues<typeof TVP_OPTIONS>, from: string): Promise<void> {
  const steps = values.steps ?? 300;
  const progress = new Progress('tvp', steps, !values.json);
  const summary: ForeignTvpSummary = await runForeignTvp({
    from,
    out: path.resolve(required(values.out, 'out')),
    tasks: values.task?.split(','),
    format: values.format,
    shots: values.shots,
    layer: values.layer,
    lambda: values.lambda,
    steps,
    batch: values.batch,
    lr: values.lr,
    seed: values.seed,
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
