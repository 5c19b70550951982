import path from 'node:path';
import { type RunConfig, loadRunConfig, presetNames, resolveRunConfig } from '../train/config.js';
import { type MetricsLine, train } from '../train/loop.js';
import { MEMORY_OPTION, command, flag, int, required, seed, text } from './command.js';
import { Progress } from './progress.js';
import { dMlpOf } from '../model/config.js';
import { parameterCount } from '../util/memory.js';

/** One line on a metrics line: ICL score at 0 shots and at the most shots, on train and held-out tasks. */
export function describeEval(line: MetricsLine): string {
  const fmt = (c: MetricsLine['eval']['train']) => {
    const k = c.byShots.length - 1;
    return `${c.metric} 0-shot ${c.byShots[0].toFixed(3)}, ${k}-shot ${c.byShots[k].toFixed(3)}`;
  };
  const held = line.eval.heldout ? `; held-out tasks: ${fmt(line.eval.heldout)}` : '';
  return `step ${line.step}: loss ${line.trainLoss.toFixed(4)}; train tasks: ${fmt(line.eval.train)}${held}`;
}

export async function runTraining(cfg: RunConfig, out: string, opts: { resume?: boolean; json?: boolean; stopAfter?: number; label?: string; maxMemory?: number }) {
  const progress = new Progress(opts.label ?? 'train', cfg.train.steps, !opts.json);
  // Building a large model's graphs takes a while before the first step: say so.
  const params = parameterCount({ ...cfg.model, dMlp: dMlpOf(cfg.model) });
  const summary = await train(cfg, out, {
    onBuild: () => params > 2e6 && progress.log(`building the training graphs of ${(params / 1e6).toFixed(1)}M parameters…`),
    resume: opts.resume,
    stopAfter: opts.stopAfter,
    maxMemory: opts.maxMemory,
    onStep: (s) => progress.update(s.step, { loss: s.loss.toFixed(4), 'tok/s': Math.round(s.tokensPerSec).toString() }),
    onEvalStart: (step) => params > 2e6 && progress.log(`step ${step}: evaluating on ${cfg.train.evalPrompts} fresh prompts per split…`),
    onEval: (line) => progress.log(describeEval(line)),
  });
  return summary;
}

/** A run config with `--seed` / `--steps` applied (checked like the config's own values). */
export function withOverrides(cfg: RunConfig, o: { seed?: number; steps?: number }): RunConfig {
  const train = { ...cfg.train, ...(o.seed !== undefined ? { seed: o.seed } : {}), ...(o.steps !== undefined ? { steps: o.steps } : {}) };
  return resolveRunConfig({ model: cfg.model, task: cfg.task, optimizer: cfg.optimizer, train });
}

export const trainCommand = command({
  name: 'train',
  summary: 'train a transformer from scratch on synthetic ICL tasks, writing ONNX checkpoints',
  usage: 'tvlens train --config <preset or file.json> --out runs/<name> [--resume]',
  options: {
    config: text(`a preset (${presetNames().join(', ')}) or a JSON config file`),
    out: text('the run folder'),
    resume: flag('continue from the newest checkpoint in --out'),
    'stop-after': int('stop after this step, as if interrupted (resume later)'),
    seed: seed("override train.seed (weights' initialisation and the data stream)"),
    steps: int('override train.steps'),
    ...MEMORY_OPTION,
  },
  async run(values) {
    const out = path.resolve(required(values.out, 'out'));
    const cfg = withOverrides(loadRunConfig(required(values.config, 'config')), { seed: values.seed, steps: values.steps });
    const summary = await runTraining(cfg, out, { resume: values.resume, json: values.json, stopAfter: values['stop-after'], maxMemory: values['max-memory'] });
    if (values.json) console.log(JSON.stringify(summary));
    else console.log(`trained ${summary.steps} steps; checkpoint ${path.relative(process.cwd(), summary.lastCheckpoint)}.onnx`);
  },
});
