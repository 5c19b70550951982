import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, InputError, TvlensError } from '../errors.js';
import { type JobResult, ngramBaselines, readResult, runJob } from '../study/job.js';
import { writeReproductionHtml } from '../report/reproduction.js';
import { writeReproductionMarkdown } from '../study/report.js';
import { summarise, writeResults } from '../study/results.js';
import { type Job, type StudySpec, expandJobs, parseShard, readStudySpec, shardJobs } from '../study/spec.js';
import { emitSlurm, taskMemory } from '../study/emit-slurm.js';
import { formatBytes } from '../util/memory.js';
import { readJsonFile, writeJsonAtomic } from '../util/fs.js';
import { choice, command, custom, flag, given, int, required, text } from './command.js';
import { Progress } from './progress.js';
import { idMatcher } from '../util/id-pattern.js';
import { checkOutputFile, isOwnHtml } from '../util/output.js';

const MARKER = 'study.json';

/** The study a folder's marker names; throws when the marker is not JSON or names another study. */
function checkMarker(out: string, spec: StudySpec): void {
  const m = readJsonFile(path.join(out, MARKER), "a study folder's marker") as { study?: unknown } | null;
  const name = m && typeof m === 'object' ? m.study : undefined;
  if (typeof name !== 'string') throw new InputError(`${path.join(out, MARKER)} names no study: ${out} is not a study folder tvlens made; choose another --out`);
  if (name !== spec.name) throw new InputError(`${out} holds the study '${name}', not '${spec.name}'; choose another --out`);
}

/** The study folder: made here, or one this study made before. Anything else is refused. */
function claimFolder(out: string, spec: StudySpec): void {
  const marker = path.join(out, MARKER);
  if (fs.existsSync(marker)) {
    checkMarker(out, spec);
    return;
  }
  // Shards started together may find each other's jobs/ or half-written marker: those are ours.
  const ours = (f: string) => f === 'jobs' || f.startsWith(`${MARKER}.`);
  if (fs.existsSync(out) && (!fs.statSync(out).isDirectory() || !fs.readdirSync(out).every(ours))) {
    throw new InputError(`${out} exists and is not a study folder; choose another --out`);
  }
  writeJsonAtomic(marker, { study: spec.name, made: new Date().toISOString() });
}

function aggregate(out: string, spec: StudySpec, jobs: readonly Job[], command: string, report?: string) {
  // The n-gram baselines depend on the task alone: computed here by today's definition, every row
  // alike, once per task config (a cell's seeds and runs share one).
  const baselines = new Map<string, JobResult['ngram']>();
  const baselinesOf = (job: Job): JobResult['ngram'] => {
    const key = JSON.stringify(job.config.task);
    if (!baselines.has(key)) baselines.set(key, ngramBaselines(job.config.task, spec.analysis.evalPrompts));
    return baselines.get(key)!;
  };
  const results = jobs.flatMap((j) => {
    const r = readResult(out, j);
    return r ? [{ ...r, ngram: baselinesOf(j) }] : [];
  });
  const summary = summarise(spec, jobs, results, command);
  const files = writeResults(out, results, summary);
  writeReproductionMarkdown(out, summary);
  const html = writeReproductionHtml(out, summary, report);
  return { summary, files, html };
}

export const studyCommand = command({
  name: 'study',
  summary: 'run a grid of training runs and their analyses (resumable, shardable), then tables and a reproduction report',
  usage: 'tvlens study <spec.json> --out runs/<study> [--shard i/n | --aggregate | --emit slurm [--tasks n] [--cpus-per-task c]] [--list]',
  options: {
    out: text('the study folder (jobs/, results.arrow, summary.json, reproduction.html)'),
    shard: custom('run only shard i of n (1-based): every n-th (cell, seed) unit; then --aggregate once all shards are done', (t) => parseShard(t)),
    aggregate: flag("only gather the finished jobs' results into the table, summary and report"),
    list: flag('list the jobs (and which are finished) without running anything'),
    only: custom('run only the jobs whose id matches these globs (e.g. "baseline|finetune", "^tvp_*_s0$"; * any characters, ? one); the aggregate still covers them all', (t, f) => ({ text: t, matches: idMatcher(t, f) })),
    report: text('also write the reproduction report here (e.g. reports/reproduction.html)'),
    emit: choice("write a scheduler's job scripts into <out>/slurm/ instead of running (slurm: a job array of shards, then the aggregate; see docs/scale-out.md)", ['slurm'] as const),
    tasks: int('with --emit: the number of array tasks (shards); default one per (cell, seed) unit'),
    'cpus-per-task': int('with --emit: CPUs (and ONNX Runtime threads) per array task', { min: 1 }, 1),
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new ConfigError(`expected one study spec file, got ${positionals.length}`, 'spec');
    if (values.shard !== undefined && values.aggregate) throw new ConfigError('--shard runs jobs and --aggregate only gathers them; give one', '--aggregate');
    if (values.emit !== undefined && (values.shard !== undefined || values.aggregate || values.list || values.only !== undefined)) {
      throw new ConfigError('writes the scripts that run every shard and the aggregate; give it without --shard, --aggregate, --list and --only', '--emit');
    }
    if (values.emit === undefined) {
      for (const k of ['tasks', 'cpus-per-task']) if (given(values, k)) throw new ConfigError('only applies with --emit slurm', `--${k}`);
    }
    const spec = readStudySpec(positionals[0]);
    const jobs = expandJobs(spec);
    const shard = values.shard ?? null;
    const only = values.only?.matches ?? null;
    const out = path.resolve(required(values.out, 'out'));
    const command = `tvlens study ${positionals[0]} --out ${values.out}`;
    if (values.report !== undefined) checkOutputFile(values.report, '--report', isOwnHtml);
    const report = values.report !== undefined ? path.resolve(values.report) : undefined;

    if (values.emit !== undefined) {
      const units = new Set(jobs.map((j) => j.unit)).size;
      const tasks = values.tasks ?? units;
      if (tasks > units) throw new ConfigError(`the study has ${units} (cell, seed) units, the most shards it splits into; got ${tasks}`, '--tasks');
      const cpusPerTask = values['cpus-per-task'];
      claimFolder(out, spec);
      const memoryBytes = taskMemory(jobs, spec.analysis);
      // The tvlens that emitted the scripts runs them: this node, its flags, this entry point.
      const tvlens = [process.execPath, ...process.execArgv, path.resolve(process.argv[1])];
      const files = emitSlurm({ study: spec.name, spec: path.resolve(positionals[0]), out, tasks, cpusPerTask, memoryBytes, tvlens, cwd: process.cwd(), report });
      if (values.json) console.log(JSON.stringify({ ...files, tasks, cpusPerTask, memoryBytes }));
      else console.log(`${tasks} array tasks × ${cpusPerTask} CPU, ${formatBytes(memoryBytes)} each, then the aggregate; submit with: bash ${path.relative(process.cwd(), files.submit)}`);
      return;
    }
    if (values.list) {
      const mine = new Set(shardJobs(jobs, shard).map((j) => j.id));
      const rows = jobs.map((j) => ({ id: j.id, unit: j.unit, inShard: mine.has(j.id), finished: fs.existsSync(out) && readResult(out, j) !== null }));
      if (values.json) console.log(JSON.stringify(rows));
      else for (const r of rows) console.log(`${r.finished ? 'done' : r.inShard ? 'todo' : '    '}  ${r.id}`);
      return;
    }
    if (values.aggregate) {
      if (!fs.existsSync(path.join(out, MARKER))) throw new InputError(`${out} is not a study folder (no ${MARKER}); run the study first`);
      checkMarker(out, spec);
      const { summary, files, html } = aggregate(out, spec, jobs, command, report);
      print(values.json, summary.finished, summary.jobs, files.table, html);
      return;
    }

    const mine = shardJobs(jobs, shard).filter((j) => !only || only(j.id));
    if (mine.length === 0) throw new ConfigError(`no job of this ${shard ? 'shard' : 'study'} matches '${values.only?.text}'`, '--only');
    claimFolder(out, spec);
    const overall = new Progress('study', mine.length, !values.json);
    // One job's failure does not stop the others: it is reported, and the study exits non-zero at the end.
    const failed: { id: string; error: unknown }[] = [];
    for (const [i, job] of mine.entries()) {
      const label = `[${i + 1}/${mine.length}] ${job.id}`;
      if (readResult(out, job)) {
        overall.log(`${label}: done before, kept`);
        continue;
      }
      const bar = new Progress(`${label} train`, job.config.train.steps, !values.json);
      let r: JobResult;
      try {
        r = await runJob(out, job, spec.analysis, (p) => {
          if (p.stage === 'train') {
            bar.total = p.total;
            bar.update(p.done);
          }
        });
      } catch (error) {
        failed.push({ id: job.id, error });
        overall.log(`${label}: failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
        continue;
      }
      overall.log(`${label}: ICL ${fmt(r.icl)}, 0-shot ${fmt(r.zeroShot)}, TV best ℓ=${r.tvBestLayer} ${fmt(r.tvBest)}, TV at ℓ=${r.tvLayer} ${fmt(r.tvAtLayer)} (${r.metric})`);
      overall.update(i + 1);
    }
    if (failed.length) {
      if (!(shard && shard.count > 1) && !only) aggregate(out, spec, jobs, command, report);
      const internal = failed.find((f) => !(f.error instanceof TvlensError));
      if (internal) throw internal.error;
      throw new InputError(`${failed.length} of ${mine.length} jobs failed (${failed.map((f) => f.id).join(', ')}); the rest finished; rerun to retry them`);
    }
    if ((shard && shard.count > 1) || only) {
      const msg = `${shard ? `shard ${shard.index}/${shard.count}` : `the ${mine.length} jobs matching --only`} done (${mine.length} jobs); to gather every finished job: tvlens study ${positionals[0]} --out ${values.out} --aggregate`;
      console.log(values.json ? JSON.stringify({ shard: shard && `${shard.index}/${shard.count}`, jobs: mine.length }) : msg);
      return;
    }
    const { summary, files, html } = aggregate(out, spec, jobs, command, report);
    print(values.json, summary.finished, summary.jobs, files.table, html);
  },
});

const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—');

function print(json: boolean, finished: number, total: number, table: string, html: string[]): void {
  if (json) {
    console.log(JSON.stringify({ finished, jobs: total, table, reports: html }));
    return;
  }
  console.log(`${finished} of ${total} jobs finished${finished < total ? ' (the rest are missing from the table)' : ''}`);
  console.log(`table: ${path.relative(process.cwd(), table)}`);
  for (const f of html) console.log(`report: ${path.relative(process.cwd(), f)}`);
}
