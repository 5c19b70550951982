/**
 * `tvlens demo` (what `npm start` runs): train the tiny preset into runs/demo (or reuse a finished
 * run of the same config), run the analyses on it, write reports/index.html, and print the path
 * with a three-line summary.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { writeReport } from '../report/index.js';
import { loadRunConfig } from '../train/config.js';
import { type MetricsLine, latestCheckpoint } from '../train/loop.js';
import { foreignEntries, isEmptyFolder, listSome, removeRunFiles } from '../train/run-folder.js';
import { lockRunFolder } from '../util/lock.js';
import type { Command } from './command.js';
import { describeEval, runTraining } from './train.js';
import { checkOutputFile, startsWith } from './limits.js';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the main job: train the tiny preset, analyse it, write reports/index.html',
  usage: 'tvlens demo [--out runs/demo] [--report reports/index.html] [--fresh]',
  options: {
    out: { type: 'string', description: 'the run folder', default: 'runs/demo' },
    report: { type: 'string', description: 'the report to write', default: 'reports/index.html' },
    fresh: { type: 'boolean', description: "retrain even if the run folder already holds a finished run (only demo's own tiny run is ever removed)" },
  },
  async run(values) {
    const t0 = performance.now();
    const out = path.resolve(values.out as string);
    const cfg = loadRunConfig('tiny');
    checkOutputFile(values.report as string, '--report', (f) => startsWith(f, '<!doctype html'));
    const configFile = path.join(out, 'config.json');
    // Never remove a folder demo did not make: only its own tiny run (same config, nothing but run files) is reused or, with --fresh, replaced.
    if (!isEmptyFolder(out)) {
      const foreign = foreignEntries(out);
      if (foreign.length) throw new InputError(`${out} holds files that are not a tvlens run (${listSome(foreign)}); demo writes only into its own run folder: choose another --out`);
      const sameConfig = fs.statSync(configFile, { throwIfNoEntry: false })?.isFile() && fs.readFileSync(configFile, 'utf8').trim() === JSON.stringify(cfg, null, 2);
      if (!sameConfig) throw new InputError(`${out} holds another run (not the tiny preset's); demo reuses or replaces only its own run: choose another --out`);
    }
    const release = lockRunFolder(out);
    try {
      if (values.fresh) removeRunFiles(out);
      const latest = latestCheckpoint(out);
      if (!latest || latest.step < cfg.train.steps) {
        process.stderr.write(`[1/2] training the tiny preset (${cfg.train.steps} steps) into ${path.relative(process.cwd(), out)}\n`);
        await runTraining(cfg, out, { resume: latest !== null, label: 'train tiny' });
      } else {
        process.stderr.write(`[1/2] reusing the finished run in ${path.relative(process.cwd(), out)} (--fresh retrains)\n`);
      }
    } finally {
      release();
    }
    process.stderr.write('[2/2] task-vector search, activation patching and the checkpoint series, then the report\n');
    const report = await writeReport([out], path.resolve(values.report as string), { command: 'npm start' });
    const last = lastMetrics(out);
    const seconds = ((performance.now() - t0) / 1000).toFixed(0);
    console.log(`report: ${path.relative(process.cwd(), report.file)} (${(report.bytes / 1e6).toFixed(1)} MB, ${seconds} s in all)`);
    console.log(last ? describeEval(last) : 'no evaluation metrics');
    console.log(report.findings[0] ?? 'task-vector search: no result');
    if (report.problems.length) console.log(`not drawn: ${report.problems.join('; ')}`);
  },
};

function lastMetrics(dir: string): MetricsLine | null {
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return null;
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
  return lines.length ? (JSON.parse(lines[lines.length - 1]) as MetricsLine) : null;
}
