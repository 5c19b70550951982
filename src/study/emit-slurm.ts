/**
 * `tvlens study spec.json --out runs/s --emit slurm`: a study as a Slurm job array plus an
 * aggregate job, written to `<out>/slurm/` (nothing runs):
 *
 *   array.sbatch      task k runs `tvlens study spec --out … --shard k+1/n` (k = $SLURM_ARRAY_TASK_ID)
 *   aggregate.sbatch  `tvlens study spec --out … --aggregate`, after every task succeeded
 *   submit.sh         submits both (`--dependency=afterok:<array>`); arguments go to the array's
 *                     sbatch, so `submit.sh --array=1` retries task 1 alone, with a new aggregate
 *
 * The shard count n is written into the script, not read from $SLURM_ARRAY_TASK_COUNT: a retry
 * submitted as `--array=1` is an array of one task, and would otherwise run shard 2/1. A job that
 * was cancelled mid-run resumes from its last checkpoint, and finished jobs are kept, so a retry
 * loses nothing. The aggregate carries `--kill-on-invalid-dep=yes`: when a task fails, it is
 * cancelled rather than left pending for ever.
 *
 * Per task: `--cpus-per-task` (default 1; TVLENS_THREADS follows it) and `--mem` from tvlens's
 * own memory estimate of the largest job in the study (training, with the TVP loss's second pass
 * where there is one, plus the analyses), times 1.5, plus what Node and ONNX Runtime take when idle.
 */
import fs from 'node:fs';
import path from 'node:path';
import { dMlpOf } from '../model/config.js';
import { promptLength } from '../tasks/index.js';
import { ensureDir, writeFileAtomic } from '../util/fs.js';
import { analysisMemory, formatBytes, trainingMemory } from '../util/memory.js';
import type { AnalysisSettings, Job } from './spec.js';

/** Node, ONNX Runtime and the analyses' code before any model: measured ~250 MiB, rounded up. */
const PROCESS_BASE = 400 * 2 ** 20;
/** The estimates are rough (within a small factor): head room over them. */
const HEADROOM = 1.5;

/** The memory one array task asks for: its largest job's training or analysis, whichever is larger. */
export function taskMemory(jobs: readonly Job[], analysis: AnalysisSettings): number {
  let most = 0;
  for (const job of jobs) {
    const { model, task, train } = job.config;
    const shape = { ...model, dMlp: dMlpOf(model) };
    const seq = promptLength(task, task.demos.max);
    const training = trainingMemory(shape, train.batchSize, seq, job.kind === 'baseline' ? 1 : 2).total;
    const analyses = analysisMemory(shape, Math.max(analysis.evalPrompts, analysis.prompts, analysis.queries), seq).total;
    most = Math.max(most, training, analyses);
  }
  const bytes = PROCESS_BASE + most * HEADROOM;
  return Math.ceil(bytes / (64 * 2 ** 20)) * 64 * 2 ** 20; // whole 64 MiB
}

/** A word for a POSIX shell, quoted so that nothing in it expands. */
export const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export interface SlurmEmit {
  /** The study's name (the jobs' name in squeue). */
  readonly study: string;
  /** The spec file and the study folder, absolute. */
  readonly spec: string;
  readonly out: string;
  /** Array tasks (shards). */
  readonly tasks: number;
  readonly cpusPerTask: number;
  readonly memoryBytes: number;
  /** How to start tvlens on the cluster: argv, e.g. [node, …/dist/src/cli/main.js]. */
  readonly tvlens: readonly string[];
  /** The folder the jobs run in (relative paths in the spec resolve from here). */
  readonly cwd: string;
  /** Passed on to the aggregate (`--report`). */
  readonly report?: string;
}

export interface SlurmFiles {
  readonly array: string;
  readonly aggregate: string;
  readonly submit: string;
  readonly logs: string;
}

/** Writes the three scripts into `<out>/slurm/` and returns their paths. */
export function emitSlurm(e: SlurmEmit): SlurmFiles {
  const dir = path.join(e.out, 'slurm');
  const logs = path.join(dir, 'logs');
  ensureDir(logs);
  const q = shellQuote;
  const tvlens = [...e.tvlens.map(q), 'study', q(e.spec), '--out', q(e.out)].join(' ');
  const mib = Math.ceil(e.memoryBytes / 2 ** 20);
  const head = (name: string, extra: string[]) =>
    [
      '#!/bin/bash',
      `#SBATCH --job-name=${q(`tvlens-${e.study}-${name}`)}`,
      ...extra,
      'set -euo pipefail',
      `cd ${q(e.cwd)}`,
    ].join('\n');
  const array = [
    head('shard', [
      `#SBATCH --array=0-${e.tasks - 1}`,
      `#SBATCH --cpus-per-task=${e.cpusPerTask}`,
      `#SBATCH --mem=${mib}M`,
      `#SBATCH --output=${q(path.join(logs, 'shard-%A_%a.out'))}`,
    ]),
    `# ${formatBytes(e.memoryBytes)}: tvlens's estimate for the study's largest job, with head room.`,
    `export TVLENS_THREADS="\${SLURM_CPUS_PER_TASK:-${e.cpusPerTask}}"`,
    `# The shard count is fixed here: a retry (submit.sh --array=1) is an array of one task.`,
    `exec ${tvlens} --shard "$((SLURM_ARRAY_TASK_ID + 1))/${e.tasks}"`,
    '',
  ].join('\n');
  const aggregate = [
    head('aggregate', [`#SBATCH --cpus-per-task=1`, `#SBATCH --mem=${mib}M`, `#SBATCH --kill-on-invalid-dep=yes`, `#SBATCH --output=${q(path.join(logs, 'aggregate-%j.out'))}`]),
    `export TVLENS_THREADS=1`,
    `exec ${tvlens} --aggregate${e.report ? ` --report ${q(e.report)}` : ''}`,
    '',
  ].join('\n');
  const submit = [
    '#!/bin/bash',
    `# Submits the study '${e.study}': ${e.tasks} array tasks, then the aggregate once all succeeded.`,
    '# Arguments go to the array job: `submit.sh --array=1` retries task 1 (and aggregates after it).',
    '# sbatch also reads SBATCH_PARTITION, SBATCH_TIMELIMIT, SBATCH_ACCOUNT from the environment.',
    'set -euo pipefail',
    'here="$(cd "$(dirname "$0")" && pwd)"',
    'array="$(sbatch --parsable "$@" "$here/array.sbatch")"',
    'array="${array%%;*}"',
    'aggregate="$(sbatch --parsable --dependency="afterok:$array" "$here/aggregate.sbatch")"',
    'echo "array job $array, aggregate job ${aggregate%%;*}"',
    '',
  ].join('\n');
  const files = { array: path.join(dir, 'array.sbatch'), aggregate: path.join(dir, 'aggregate.sbatch'), submit: path.join(dir, 'submit.sh'), logs };
  writeFileAtomic(files.array, array);
  writeFileAtomic(files.aggregate, aggregate);
  writeFileAtomic(files.submit, submit);
  for (const f of [files.array, files.aggregate, files.submit]) fs.chmodSync(f, 0o755);
  return files;
}
