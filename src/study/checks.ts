/**
 * What a study reads back from its folder is checked before it is believed: a job's result.json
 * (hand-edited, truncated, or another job's) and a job's run folder (swapped for another job's).
 * Each failure is one line naming the file and what to do.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import { readJsonFile, writeJsonAtomic } from '../util/fs.js';
import type { JobResult } from './job.js';
import type { Job } from './spec.js';

/** Figures every result has, as finite numbers (the table and the verdicts are made of them). */
const NUMBERS = ['icl', 'zeroShot', 'tvBestLayer', 'tvBest', 'tvLayer', 'tvAtLayer', 'searchIcl', 'searchZeroShot', 'labelNoise', 'steps', 'layers', 'seed'] as const;
/** Figures that may be null (not measured for this kind of task). */
const NULLABLE = ['recovered', 'strength', 'nonLocality2', 'nonLocality3', 'entropy', 'tvAddCentered', 'tvDummies', 'heldout', 'queryShift'] as const;

/** Checks a job's result as read from `file`: its id and figures. The hash is the caller's (a stale result is not an error). */
export function checkResult(r: unknown, job: Job, file: string): JobResult {
  const redo = `remove it and the study reruns that job's analyses`;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new InputError(`${file} is not a job result (not a JSON object); ${redo}`);
  const o = r as Record<string, unknown>;
  if (o.id !== job.id) throw new InputError(`${file} is the result of job '${String(o.id)}', not of '${job.id}' (moved or copied from another job's folder); ${redo}`);
  if (o.hash !== job.hash) return o as unknown as JobResult; // another config's result: rerun, not an error
  const bad = [
    ...NUMBERS.filter((k) => typeof o[k] !== 'number' || !Number.isFinite(o[k] as number)),
    ...NULLABLE.filter((k) => o[k] !== null && o[k] !== undefined && (typeof o[k] !== 'number' || Number.isNaN(o[k]))),
    ...(o.metric === 'accuracy' || o.metric === 'nmse' ? [] : ['metric']),
    ...(Array.isArray(o.tvCurve) && (o.tvCurve as unknown[]).every((v) => typeof v === 'number' || v === null) ? [] : ['tvCurve']),
  ];
  if (bad.length) throw new InputError(`${file}: ${bad.join(', ')} ${bad.length === 1 ? 'is' : 'are'} missing or not a number (edited by hand?); ${redo}`);
  return o as unknown as JobResult;
}

const RUN_MARK = 'job.json';

/**
 * The run a job's folder holds must be the one the job started: jobs/<id>/job.json records the
 * job's id and its run's id (run/run.json), so a run folder swapped for another job's, or a job
 * folder copied under another id, is refused instead of analysed.
 */
export function checkJobRun(jobDir: string, job: Job): void {
  const mark = path.join(jobDir, RUN_MARK);
  if (!fs.existsSync(mark)) return;
  const m = readJsonFile(mark, "a study job's marker") as { id?: unknown; runId?: unknown } | null;
  if (m?.id !== job.id) throw new InputError(`${jobDir} holds job '${String(m?.id)}', not '${job.id}' (${mark}): it was moved or copied; put it back or remove it`);
  const runId = currentRunId(jobDir);
  if (runId !== null && typeof m.runId === 'string' && runId !== m.runId) {
    throw new InputError(`${path.join(jobDir, 'run')} is not the run job '${job.id}' started (its run id ${runId} is not ${m.runId}, in ${mark}): it was swapped for another; put it back or remove both`);
  }
}

/** Records the job's id and its run's id, once the run exists. */
export function markJobRun(jobDir: string, job: Job): void {
  const runId = currentRunId(jobDir);
  if (runId !== null) writeJsonAtomic(path.join(jobDir, RUN_MARK), { id: job.id, runId });
}

function currentRunId(jobDir: string): string | null {
  const file = path.join(jobDir, 'run', 'run.json');
  if (!fs.existsSync(file)) return null;
  const r = readJsonFile(file, "a run's id file") as { runId?: unknown } | null;
  return typeof r?.runId === 'string' ? r.runId : null;
}
