/**
 * `tvlens demo` (what `npm start` runs): train the tiny preset into runs/demo, then print a short
 * summary. Later stages (analyses, the report) hook in here as they land.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadRunConfig } from '../train/config.js';
import { latestCheckpoint } from '../train/loop.js';
import type { Command } from './command.js';
import { describeEval, runTraining } from './train.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the main job: train the tiny preset, analyse it, and summarise',
  usage: 'tvlens demo [--out runs/demo]',
  options: {
    out: { type: 'string', description: 'the run folder', default: 'runs/demo' },
    fresh: { type: 'boolean', description: 'retrain even if the run folder already holds a finished run' },
  },
  async run(values) {
    const out = path.resolve(values.out as string);
    const cfg = loadRunConfig('tiny');
    const configFile = path.join(out, 'config.json');
    const sameConfig = fs.existsSync(configFile) && fs.readFileSync(configFile, 'utf8').trim() === JSON.stringify(cfg, null, 2);
    if (values.fresh || !sameConfig) fs.rmSync(out, { recursive: true, force: true });
    const latest = latestCheckpoint(out);
    if (!latest || latest.step < cfg.train.steps) {
      const summary = await runTraining(cfg, out, { resume: latest !== null, label: 'train tiny' });
      if (summary.last) console.log(describeEval(summary.last));
    }
    console.log(`checkpoints in ${path.relative(process.cwd(), path.join(out, 'checkpoints'))}`);
  },
};
