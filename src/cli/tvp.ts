import path from 'node:path';
import { runTvp } from '../tvp/run.js';
import type { Command } from './command.js';
import { ConfigError } from '../errors.js';
import { MEMORY_OPTION, integerOption, memoryOption, numberOption, required, seedOption } from './command.js';
import { Progress } from './progress.js';
import { describeEval } from './train.js';

export const tvpCommand: Command = {
  name: 'tvp',
  summary: 'train or fine-tune with TVP-loss (L = L_ICL + λ·L_TVP) through standard-op ONNX training artifacts',
  usage: 'tvlens tvp --from <checkpoint.onnx | preset | config.json> --layer ℓ --lambda λ --steps N --out runs/<name>',
  options: {
    from: { type: 'string', description: 'a checkpoint to fine-tune (fresh optimizer state), or a preset/config to train from scratch' },
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
