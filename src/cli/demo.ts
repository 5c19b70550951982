/**
 * `tvlens demo` (what `npm start` runs): train the tiny preset into runs/demo (or reuse a finished
 * run of the same config) to show training, then write reports/index.html over the shipped models
 * of models/ (a baseline and a TVP-loss model, for offsets and for linear regression) and the tiny
 * run. The report opens with their task-vector curves side by side and the reproduction study's
 * emergence table; the console gets three lines: the report, the baseline, the TVP model.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { writeReport } from '../report/index.js';
import type { StudySummary } from '../study/results.js';
import { PACKAGE_ROOT } from '../version.js';
import { loadRunConfig, sameRunConfig } from '../train/config.js';
import { latestCheckpoint } from '../runs/folder.js';
import type { MetricsLine } from '../train/loop.js';
import { foreignEntries, isEmptyFolder, listSome, removeRunFiles } from '../train/run-folder.js';
import { lockRunFolder } from '../util/lock.js';
import { command, flag, text } from './command.js';
import { describeEval, runTraining } from './train.js';
import { checkOutputFile, isOwnHtml } from './limits.js';

export const demoCommand = command({
  name: 'demo',
  summary: 'the main job: train the tiny preset, analyse it and the shipped models, write reports/index.html',
  usage: 'tvlens demo [--out runs/demo] [--report reports/index.html] [--fresh]',
  options: {
    out: text('the run folder', 'runs/demo'),
    report: text('the report to write', 'reports/index.html'),
    fresh: flag("retrain even if the run folder already holds a finished run (only demo's own tiny run is ever removed)"),
  },
  async run(values) {
    const t0 = performance.now();
    const out = path.resolve(values.out);
    const cfg = loadRunConfig('tiny');
    checkOutputFile(values.report, '--report', isOwnHtml);
    const configFile = path.join(out, 'config.json');
    // Never remove a folder demo did not make: only its own tiny run (same config, nothing but run files) is reused or, with --fresh, replaced.
    if (!isEmptyFolder(out)) {
      const foreign = foreignEntries(out);
      if (foreign.length) throw new InputError(`${out} holds files that are not a tvlens run (${listSome(foreign)}); demo writes only into its own run folder: choose another --out`);
      const sameConfig = fs.statSync(configFile, { throwIfNoEntry: false })?.isFile() && sameRunConfig(parseOrNull(configFile), cfg);
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
    // Relative paths, so the commands the report records read as a user would type them.
    const shipped = SHOWN.map((name) => path.join(MODELS, `${name}.onnx`))
      .filter((f) => fs.existsSync(f))
      .map((f) => path.relative(process.cwd(), f) || f);
    process.stderr.write(`[2/2] task-vector search, activation patching and the checkpoint series on ${shipped.length} shipped models and the tiny run, then the report\n`);
    const report = await writeReport([...shipped, out], path.resolve(values.report), { command: 'npm start', story: { study: readStudy() } });
    const seconds = Math.round((performance.now() - t0) / 1000);
    // The contrast in numbers: the shipped baseline, then the shipped TVP model (or the tiny run when models/ is absent).
    const lines = report.storyLines.length >= 2 ? report.storyLines.slice(0, 2) : [lastMetrics(out) ? describeEval(lastMetrics(out)!) : 'no evaluation metrics', report.findings[0] ?? 'task-vector search: no result'];
    if (values.json) {
      console.log(JSON.stringify({ report: report.file, bytes: report.bytes, seconds, run: out, contrast: lines, findings: report.findings, problems: report.problems }));
      return;
    }
    console.log(`report: ${path.relative(process.cwd(), report.file)} (${(report.bytes / 1e6).toFixed(1)} MB, ${seconds} s in all)`);
    for (const l of lines) console.log(l);
    if (report.problems.length) process.stderr.write(`not drawn: ${report.problems.join('; ')}\n`);
  },
});

/** The shipped models the report shows, in this order (the first two make the console's contrast). */
const SHOWN = ['offsets-4L-baseline', 'offsets-4L-tvp', 'linreg-3L-baseline', 'linreg-3L-tvp'];
const MODELS = path.join(PACKAGE_ROOT, 'models');
const STUDY_SUMMARY = path.join(PACKAGE_ROOT, 'reports', 'studies', 'paper', 'summary.json');

function readStudy(): StudySummary | null {
  return fs.existsSync(STUDY_SUMMARY) ? (JSON.parse(fs.readFileSync(STUDY_SUMMARY, 'utf8')) as StudySummary) : null;
}

function lastMetrics(dir: string): MetricsLine | null {
  const file = path.join(dir, 'metrics.jsonl');
  if (!fs.existsSync(file)) return null;
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
  return lines.length ? (JSON.parse(lines[lines.length - 1]) as MetricsLine) : null;
}

/** A file's JSON, or null where it is not JSON (then it is not demo's run either). */
function parseOrNull(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}
