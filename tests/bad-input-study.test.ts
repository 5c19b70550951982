/**
 * The bad-input suite for `tvlens study`: specs that would run a cell twice, ignore a key, exclude
 * nothing or everything, name a fine-tune step the baseline never writes, or derive a job folder
 * outside --out; flags that would overwrite a user's file, aggregate into another study, or hang
 * on a backtracking pattern; result files edited by hand and run folders swapped between jobs.
 * Every refusal: exit 1, one line, nothing in the sandbox changed (tests/support/refusal.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkJobRun } from '../src/study/checks.js';
import { checkJobId, expandJobs, readStudySpec } from '../src/study/spec.js';
import { runCli } from './support/cli.js';
import { type CaseClass, sandbox } from './support/refusal.js';

const box = sandbox('tvlens-bad-study-');
const { at, write } = box;
afterAll(() => box.remove());

/** A spec file with one grid entry over the tiny preset (nothing here trains: each case is refused first). */
const spec = (name: string, entry: Record<string, unknown>, top: Record<string, unknown> = {}) =>
  write(`specs/${name}.json`, JSON.stringify({ name: 's', grid: [{ group: 'g', preset: 'tiny', seeds: [0], ...entry }], ...top }));

const GOOD = spec('good', { vary: { 'model.layers': [1, 2] } });
const OUT = at('out'); // never made by a refused case
const USER_HTML = write('page.html', '<html><body>mine</body></html>');
const USER_TXT = write('notes.txt', 'my notes');
fs.symlinkSync(at('nowhere.html'), at('dangling.html'));
// Study folders that are not this study's.
write('other-study/study.json', JSON.stringify({ study: 'another', made: 'then' }));
write('other-study/summary.json', '{"mine": true}');
write('not-json-study/study.json', 'this is not JSON');
write('nameless-study/study.json', '{"made": "then"}');

interface Case {
  readonly name: string;
  readonly cls: CaseClass;
  readonly args: () => string[];
  readonly want: RegExp;
  readonly setup?: () => void;
}

const cases: Case[] = [
  // Silent before: a cell counted twice, a seed overridden, an exclude that excluded nothing.
  { name: 'vary lists a value twice', cls: 'silent', args: () => ['study', spec('dup', { vary: { 'model.layers': [2, 2] } }), '--out', OUT], want: /vary\.model\.layers: lists 2 twice/ },
  { name: 'vary lists one number three ways', cls: 'silent', args: () => ['study', spec('dup3', { vary: { 'optimizer.lr': [0.003, 0.003, 3e-3] } }), '--out', OUT], want: /vary\.optimizer\.lr: lists 0\.003 twice/ },
  { name: 'tvp.lambda lists a value twice', cls: 'silent', args: () => ['study', spec('duplambda', { runs: ['baseline', 'tvp-scratch'], tvp: { lambda: [0.3, 0.30] } }), '--out', OUT], want: /tvp\.lambda: lists λ 0\.3 twice/ },
  { name: 'vary train.seed beside seeds', cls: 'silent', args: () => ['study', spec('varyseed', { vary: { 'train.seed': [1, 2] } }), '--out', OUT], want: /vary\.train\.seed: the seed of each run comes from "seeds"/ },
  { name: 'set train.seed beside seeds', cls: 'silent', args: () => ['study', spec('setseed', { set: { 'train.seed': 7 } }), '--out', OUT], want: /set\.train\.seed: the seed of each run comes from "seeds"/ },
  { name: 'an exclude whose key has a typo', cls: 'silent', args: () => ['study', spec('extypo', { vary: { 'model.layers': [1, 2] }, exclude: [{ 'model.layer': 1 }] }), '--out', OUT], want: /exclude\[0\]: 'model\.layer' is not a key of vary \(model\.layers\)/ },
  { name: 'an exclude whose value is not in vary', cls: 'silent', args: () => ['study', spec('exval', { vary: { 'model.layers': [1, 2] }, exclude: [{ 'model.layers': 3 }] }), '--out', OUT], want: /exclude\[0\]\.model\.layers: 3 is not among the values/ },
  { name: 'an empty exclude', cls: 'silent', args: () => ['study', spec('exempty', { vary: { 'model.layers': [1, 2] }, exclude: [{}] }), '--out', OUT], want: /exclude\[0\]: is empty/ },
  // Messages: an exclude of every cell was "--only: no job matches 'undefined'"; a fine-tune step the baseline never writes was "run the baseline first".
  { name: 'an exclude that leaves no cell', cls: 'message', args: () => ['study', spec('exall', { vary: { 'model.layers': [1, 2] }, exclude: [{ 'model.layers': 1 }, { 'model.layers': 2 }] }), '--out', OUT], want: /exclude: exclude leaves none of its 2 cells to run/ },
  { name: 'a fine-tune from a step the baseline never writes', cls: 'message', args: () => ['study', spec('ftstep', { set: { 'train.steps': 30, 'train.checkpointEvery': 20 }, runs: ['baseline', 'tvp-finetune'] }), '--out', OUT], want: /step 15 \(half of train\.steps 30\), which the baseline never writes \(train\.checkpointEvery 20\)/ },
  { name: 'a fine-tune from an odd step count', cls: 'message', args: () => ['study', spec('ftodd', { set: { 'train.steps': 31, 'train.checkpointEvery': 31 }, runs: ['baseline', 'tvp-finetune'] }), '--out', OUT], want: /never writes/ },
  // Security: nothing a spec says names a path outside --out.
  { name: 'a group named ..', cls: 'security', args: () => ['study', spec('dotdot', { group: '..' }), '--out', OUT], want: /group: needs a group name .*not starting with \./ },
  { name: 'a study named .hidden', cls: 'security', args: () => ['study', spec('hidden', {}, { name: '.hidden' }), '--out', OUT], want: /name: needs a name/ },
  { name: 'a vary value that is a path', cls: 'security', args: () => ['study', spec('pathval', { vary: { 'task.format': ['/../../../escaped'] } }), '--out', OUT, '--list'], want: /task\.format/ },
  { name: 'two values that make one job id', cls: 'security', args: () => ['study', write('specs/collide.json', JSON.stringify({ name: 's', grid: [{ group: 'g', preset: 'tiny', seeds: [0], vary: { 'task.discrete.families': [['offset'], ['offset']].map(() => 'offset') } }] })), '--out', OUT], want: /lists "offset" twice/ },
  // Hangs: a backtracking pattern is not a pattern --only takes.
  { name: '--only with a backtracking regular expression', cls: 'hang', args: () => ['study', GOOD, '--out', OUT, '--only', '([\\w-]+)+x$'], want: /--only: takes job-id globs .*'\(' is not allowed/ },
  { name: '--only empty', cls: 'refusal', args: () => ['study', GOOD, '--out', OUT, '--only', ''], want: /--only: is empty/ },
  { name: '--only with an empty alternative', cls: 'refusal', args: () => ['study', GOOD, '--out', OUT, '--only', 'a||b'], want: /--only: has an empty alternative/ },
  { name: '--only with a $ inside', cls: 'refusal', args: () => ['study', GOOD, '--out', OUT, '--only', 'a$b'], want: /--only: '\^' and '\$' anchor a pattern only at its start and end/ },
  { name: '--only matching no job', cls: 'refusal', args: () => ['study', GOOD, '--out', OUT, '--only', 'tvp-*'], want: /--only: no job of this study matches 'tvp-\*'/ },
  { name: '--only of 5000 characters', cls: 'hang', args: () => ['study', GOOD, '--out', OUT, '--only', '*a'.repeat(2500)], want: /--only: is 5000 characters long; at most 1000/ },
  // Never overwrite: --report on a user's file, a link; --aggregate into another study.
  { name: '--report onto a user’s HTML page', cls: 'overwrite', args: () => ['study', GOOD, '--out', OUT, '--report', USER_HTML], want: /--report .*page\.html exists and is not a file tvlens wrote/ },
  { name: '--report onto a text file', cls: 'overwrite', args: () => ['study', GOOD, '--out', OUT, '--report', USER_TXT], want: /--report .*notes\.txt exists and is not a file tvlens wrote/ },
  { name: '--report onto a dangling symlink', cls: 'overwrite', args: () => ['study', GOOD, '--out', OUT, '--report', at('dangling.html')], want: /--report .*dangling\.html is a symbolic link to nothing/ },
  { name: '--report onto a folder', cls: 'overwrite', args: () => ['study', GOOD, '--out', OUT, '--report', at('specs')], want: /--report .*specs is a folder/ },
  { name: '--aggregate into another study’s folder', cls: 'overwrite', args: () => ['study', GOOD, '--out', at('other-study'), '--aggregate'], want: /holds the study 'another', not 's'/ },
  { name: '--aggregate into a folder whose study.json is not JSON', cls: 'overwrite', args: () => ['study', GOOD, '--out', at('not-json-study'), '--aggregate'], want: /study\.json is not valid JSON/ },
  { name: '--aggregate into a folder whose study.json names no study', cls: 'overwrite', args: () => ['study', GOOD, '--out', at('nameless-study'), '--aggregate'], want: /study\.json names no study/ },
  { name: 'running into another study’s folder', cls: 'overwrite', args: () => ['study', GOOD, '--out', at('other-study')], want: /holds the study 'another', not 's'/ },
  { name: 'a grid of a hundred million cells (once minutes of silence)', cls: 'hang', args: () => ['study', spec('huge', { vary: { 'optimizer.lr': Array.from({ length: 10000 }, (_, i) => (i + 1) / 1e6), 'train.batchSize': Array.from({ length: 10000 }, (_, i) => i + 1) } }), '--out', OUT, '--list'], want: /spans 100000000 \(cell, seed\) units, more than the 10000/ },
  // Clean refusals of spec shape.
  { name: 'λ that is a string', cls: 'refusal', args: () => ['study', spec('lambdastr', { runs: ['baseline', 'tvp-scratch'], tvp: { lambda: ['0.3'] } }), '--out', OUT], want: /tvp\.lambda/ },
  { name: 'a preset that is neither file nor name', cls: 'refusal', args: () => ['study', spec('nopreset', { preset: 'no-such-preset' }), '--out', OUT], want: /preset/ },
];

describe('bad input to tvlens study: one line, exit 1, nothing written', () => {
  it.each(cases.map((c) => ({ ...c, title: `${c.cls}: ${c.name}` })))('$title', async (c) => {
    c.setup?.();
    const args = c.args(); // writes the case's spec, before the snapshot
    const before = box.snapshot();
    const t0 = performance.now();
    const r = await runCli(args);
    expect(performance.now() - t0, 'answered at once').toBeLessThan(10_000);
    box.expectRefusal(r, c.want, before);
  }, 30_000);
});

describe('study specs and folders: what used to pass silently', () => {
  it('a preset name is not shadowed by a folder of that name beside the spec (silent)', async () => {
    const file = write('shadow/spec.json', JSON.stringify({ name: 's', grid: [{ group: 'g', preset: 'tiny', seeds: [0] }] }));
    fs.mkdirSync(at('shadow', 'tiny'));
    const r = await runCli(['study', file, '--out', at('shadow-out'), '--list']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/g_baseline_s0/);
  });

  it('job ids are safe file names: values with / and .. become letters, and the ids are checked (security)', () => {
    const file = write('ids/spec.json', JSON.stringify({ name: 's', grid: [{ group: 'g', preset: 'tiny', seeds: [0], vary: { 'optimizer.lr': [0.001, 0.003] } }] }));
    const ids = expandJobs(readStudySpec(file)).map((j) => j.id);
    expect(ids).toEqual(['g_lr-0.001_baseline_s0', 'g_lr-0.003_baseline_s0']);
    for (const bad of ['../x', 'a/b', '.hidden', '', 'x'.repeat(201), '..', 'a\0b']) expect(() => checkJobId(bad)).toThrow(/not a safe folder name/);
    expect(checkJobId('g_format-..-..-escaped_baseline_s0')).toBe('g_format-..-..-escaped_baseline_s0');
  });

  it('an edited result.json (figures missing or not numbers) is refused by --aggregate, naming the file (silent)', async () => {
    const file = write('edited/spec.json', JSON.stringify({ name: 'e', grid: [{ group: 'g', preset: 'tiny', seeds: [0] }] }));
    const [job] = expandJobs(readStudySpec(file));
    const out = at('edited-out');
    write('edited-out/study.json', JSON.stringify({ study: 'e', made: 'then' }));
    write(`edited-out/jobs/${job.id}/result.json`, JSON.stringify({ id: job.id, hash: job.hash, icl: 'high', metric: 'accuracy', tvCurve: [] }));
    const before = box.snapshot();
    const r = await runCli(['study', file, '--out', out, '--aggregate']);
    box.expectRefusal(r, /result\.json: zeroShot, .*icl.*missing or not a number|result\.json: icl, zeroShot.* missing or not a number/, before);
  });

  it("another job's result.json copied into a job folder is refused (silent)", async () => {
    const file = write('copied/spec.json', JSON.stringify({ name: 'c', grid: [{ group: 'g', preset: 'tiny', seeds: [0, 1] }] }));
    const [a, b] = expandJobs(readStudySpec(file));
    write('copied-out/study.json', JSON.stringify({ study: 'c', made: 'then' }));
    write(`copied-out/jobs/${a.id}/result.json`, JSON.stringify({ id: b.id, hash: b.hash }));
    const before = box.snapshot();
    const r = await runCli(['study', file, '--out', at('copied-out'), '--aggregate']);
    box.expectRefusal(r, new RegExp(`is the result of job '${b.id}', not of '${a.id}'`), before);
  });

  it("a job's run folder swapped for another job's is detected (silent)", () => {
    const file = write('swap/spec.json', JSON.stringify({ name: 'w', grid: [{ group: 'g', preset: 'tiny', seeds: [0, 1] }] }));
    const [a] = expandJobs(readStudySpec(file));
    const dir = at('swap-out', 'jobs', a.id);
    write(`swap-out/jobs/${a.id}/job.json`, JSON.stringify({ id: a.id, runId: 'run-of-a' }));
    write(`swap-out/jobs/${a.id}/run/run.json`, JSON.stringify({ format: 'tvlens-run/1', runId: 'run-of-b' }));
    expect(() => checkJobRun(dir, a)).toThrow(/is not the run job 'g_baseline_s0' started .*swapped/);
    write(`swap-out/jobs/${a.id}/job.json`, JSON.stringify({ id: 'g_baseline_s1', runId: 'run-of-b' }));
    expect(() => checkJobRun(dir, a)).toThrow(/holds job 'g_baseline_s1', not 'g_baseline_s0'/);
  });
});

export const STUDY_CASES = cases.length + 5;
