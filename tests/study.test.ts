import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from '../src/cli/command.js';
import { studyCommand } from '../src/cli/study.js';
import { readStudySpec, resolveStudySpec, expandJobs, parseShard, shardJobs } from '../src/study/spec.js';
import { readResultsTable } from '../src/study/results.js';
import { estimate as bootstrap } from '../src/util/stats.js';

const ROOT = path.resolve(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-study-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const tinySpec = {
  name: 'tiny-study',
  description: 'two seeds of tiny, a baseline and its TVP fine-tune each',
  grid: [
    {
      group: 'g',
      preset: 'tiny',
      set: { 'train.steps': 20, 'train.evalEvery': 10, 'train.checkpointEvery': 10, 'train.evalPrompts': 32 },
      seeds: [0, 1],
      runs: ['baseline', 'tvp-finetune'],
      tvp: { lambda: [1] },
    },
  ],
  analysis: { prompts: 4, queries: 8, evalPrompts: 32, permutations: 10, variants: false },
};
const specFile = path.join(dir, 'spec.json');
fs.writeFileSync(specFile, JSON.stringify(tinySpec));

/** Starts the CLI in its own process, one ONNX Runtime thread, so runs are comparable bit for bit. */
function start(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env: { ...process.env, TVLENS_THREADS: '1' } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}
const run = (args: string[]) => start(args).done;

/** The table's rows without what legitimately differs between processes (nothing numeric should). */
const rowsOf = (out: string) => readResultsTable(path.join(out, 'results.arrow'));

describe('study specs', () => {
  it('expands a grid into jobs with the baseline before the TVP runs of its (cell, seed) unit', () => {
    const jobs = expandJobs(resolveStudySpec(tinySpec, dir));
    expect(jobs.map((j) => j.id)).toEqual(['g_baseline_s0', 'g_tvp-finetune-l1_s0', 'g_baseline_s1', 'g_tvp-finetune-l1_s1']);
    expect(jobs.map((j) => j.unit)).toEqual([0, 0, 1, 1]);
    expect(jobs[1].baselineId).toBe('g_baseline_s0');
    expect(jobs[0].config.train.steps).toBe(20);
    expect(jobs[2].config.train.seed).toBe(1);
  });

  it('varies factors as a product, leaves out excluded cells, and names each cell in the job id', () => {
    const spec = resolveStudySpec(
      { name: 's', grid: [{ group: 'e', preset: 'tiny', vary: { 'task.format': ['triplet', 'pairwise'], 'model.layers': [1, 2] }, exclude: [{ 'task.format': 'pairwise', 'model.layers': 1 }] }] },
      dir,
    );
    const jobs = expandJobs(spec);
    expect(jobs.map((j) => j.id)).toEqual(['e_format-triplet_layers-1_baseline_s0', 'e_format-triplet_layers-2_baseline_s0', 'e_format-pairwise_layers-2_baseline_s0']);
    expect(jobs[2].config.task.format).toBe('pairwise');
    expect(jobs[2].config.model.layers).toBe(2);
  });

  it('splits units across shards so that every job runs exactly once', () => {
    const jobs = expandJobs(resolveStudySpec(tinySpec, dir));
    const a = shardJobs(jobs, parseShard('1/2'));
    const b = shardJobs(jobs, parseShard('2/2'));
    expect([...a, ...b].map((j) => j.id).sort()).toEqual(jobs.map((j) => j.id).sort());
    expect(a.every((j) => j.unit === 0)).toBe(true);
  });

  it.each([
    [{ ...tinySpec, extra: 1 }, /extra: unknown key/],
    [{ ...tinySpec, grid: [{ ...tinySpec.grid[0], runs: ['tvp-finetune'] }] }, /add "baseline" to runs/],
    [{ ...tinySpec, grid: [{ ...tinySpec.grid[0], runs: ['nonsense'] }] }, /'nonsense' is not valid/],
    [{ ...tinySpec, grid: [{ ...tinySpec.grid[0], seeds: [1.5] }] }, /seeds must be non-negative integers/],
    [{ ...tinySpec, grid: [{ ...tinySpec.grid[0], set: { 'model.bogus': 1 } }] }, /model.bogus: unknown key/],
    [{ ...tinySpec, grid: [{ ...tinySpec.grid[0], tvp: { lambda: [0] } }] }, /λ values must be > 0/],
    [{ ...tinySpec, name: 'a b' }, /name/],
  ])('refuses a bad spec with one line naming the key (%#)', (json, message) => {
    expect(() => expandJobs(resolveStudySpec(json, dir))).toThrow(message);
  });

  it.each(['0/2', '3/2', '1/0', 'x', '1/2/3'])('refuses --shard %s', (s) => {
    expect(() => parseShard(s)).toThrow(/--shard: expected i\/n/);
  });

  it('reads the shipped study specs', () => {
    for (const f of fs.readdirSync(path.join(ROOT, 'src/presets/studies'))) {
      const spec = readStudySpec(path.join(ROOT, 'src/presets/studies', f));
      expect(expandJobs(spec).length).toBeGreaterThan(1);
    }
  });
});

describe('tvlens study refuses bad input in one line, before writing anything', () => {
  const fresh = path.join(dir, 'never-made');
  const aFile = path.join(dir, 'a-file');
  fs.writeFileSync(aFile, 'x');
  const empty = path.join(dir, 'empty.json');
  fs.writeFileSync(empty, '');
  const noGrid = path.join(dir, 'no-grid.json');
  fs.writeFileSync(noGrid, JSON.stringify({ name: 'x', grid: [] }));
  it.each([
    [[], /expected one study spec file, got 0/],
    [['/nonexistent/spec.json', '--out', fresh], /does not exist/],
    [[empty, '--out', fresh], /is empty, not a study spec/],
    [[noGrid, '--out', fresh], /grid: needs at least one grid entry/],
    [[specFile], /--out: is required/],
    [[specFile, '--out', fresh, '--shard', '3/2'], /--shard: expected i\/n/],
    [[specFile, '--out', fresh, '--shard', '1/2', '--aggregate'], /give one/],
    [[specFile, '--out', aFile], /exists and is not a study folder/],
    [[specFile, '--out', fresh, '--aggregate'], /is not a study folder \(no study.json\)/],
    [[specFile, '--out', fresh, '--only', '('], /--only: takes job-id globs/],
    [[specFile, '--out', fresh, '--only', 'nothing-matches'], /--only: no job of this study matches/],
  ])('%j', async (argv, message) => {
    // A bad flag value is refused as the flags are parsed; the rest when the command runs.
    const attempt = async () => {
      const { values, positionals } = parse(studyCommand, argv as string[]);
      await studyCommand.run(values, positionals);
    };
    await expect(attempt()).rejects.toThrow(message);
    expect(fs.existsSync(fresh)).toBe(false);
    expect(fs.readFileSync(aFile, 'utf8')).toBe('x');
  });
});

describe('bootstrap intervals', () => {
  it('stay inside the range of the values (an accuracy interval inside [0, 1])', () => {
    const i = bootstrap([0.98, 1, 1]);
    expect(i.low).toBeGreaterThanOrEqual(0.98);
    expect(i.high).toBeLessThanOrEqual(1);
    expect(i.mean).toBeCloseTo(0.9933, 3);
    expect(bootstrap([0.5])).toEqual({ mean: 0.5, low: 0.5, high: 0.5, n: 1 });
    expect(bootstrap([null, NaN]).n).toBe(0);
  });
});

describe('the shipped second-wave study', () => {
  it('keeps every finished job finished: today\'s spec gives each committed result its hash', () => {
    // A setting added later with a default must not change old jobs' hashes (spec.ts LATER_DEFAULTS), or a resumed study retrains them all.
    const rows = readResultsTable(path.join(ROOT, 'reports/studies/second-wave/results.arrow'));
    const jobs = new Map(expandJobs(readStudySpec(path.join(ROOT, 'src/presets/studies/second-wave.json'))).map((j) => [j.id, j.hash]));
    expect(rows.length).toBe(jobs.size);
    for (const row of rows) expect(jobs.get(row.id as string), row.id as string).toBe(row.job_hash);
  });
});

describe('tvlens study', () => {
  const one = path.join(dir, 'one');
  const sharded = path.join(dir, 'sharded');
  const killed = path.join(dir, 'killed');

  it('runs every job in one process and writes the table, summary and report', async () => {
    const r = await run(['study', specFile, '--out', one]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('4 of 4 jobs finished');
    const rows = rowsOf(one);
    expect(rows.map((x) => x.id)).toEqual(['g_baseline_s0', 'g_tvp-finetune-l1_s0', 'g_baseline_s1', 'g_tvp-finetune-l1_s1']);
    for (const row of rows) {
      expect(row.icl as number).toBeGreaterThanOrEqual(0);
      expect(row.icl as number).toBeLessThanOrEqual(1);
      expect(row.steps).toBe(row.kind === 'baseline' ? 20 : 10);
    }
    const summary = JSON.parse(fs.readFileSync(path.join(one, 'summary.json'), 'utf8'));
    expect(summary.finished).toBe(4);
    expect(summary.commit).toMatch(/^([0-9a-f]{40}(-dirty)?|unknown)$/);
    expect(fs.readFileSync(path.join(one, 'reproduction.html'), 'utf8')).toContain('TVP-loss forms a strong task vector');
  });

  it('computes the n-gram baselines at aggregation by today\'s definition, not from a stored result', async () => {
    const file = path.join(one, 'jobs', 'g_baseline_s0', 'result.json');
    const stored = fs.readFileSync(file, 'utf8');
    // A result written by an older tvlens with a baseline that tiny's offset task cannot have (it is no sequence task).
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(stored), ngram: { unigram: [0.5], bigram: [0.5] } }));
    try {
      const agg = await run(['study', specFile, '--out', one, '--aggregate']);
      expect(agg.code, agg.stderr).toBe(0);
      expect(rowsOf(one)[0].bigram_by_shots).toBe('null');
    } finally {
      fs.writeFileSync(file, stored);
    }
  });

  it('gives the same table from two shards run at once and then aggregated', async () => {
    const [a, b] = await Promise.all([run(['study', specFile, '--out', sharded, '--shard', '1/2']), run(['study', specFile, '--out', sharded, '--shard', '2/2'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout).toContain('shard 1/2 done');
    const agg = await run(['study', specFile, '--out', sharded, '--aggregate']);
    expect(agg.code, agg.stderr).toBe(0);
    expect(rowsOf(sharded)).toEqual(rowsOf(one));
  });

  it('continues after kill -9 and ends with the same results as an uninterrupted run', async () => {
    // Seed 0 only: its two jobs have the same configs, hence the same ids and hashes, as in the full spec.
    const seed0 = path.join(dir, 'seed0.json');
    fs.writeFileSync(seed0, JSON.stringify({ ...tinySpec, grid: [{ ...tinySpec.grid[0], seeds: [0] }] }));
    const p = start(['study', seed0, '--out', killed]);
    const state = path.join(killed, 'jobs', 'g_baseline_s0', 'run', 'checkpoints', 'step-000010.state');
    for (let i = 0; i < 600 && !fs.existsSync(state); i++) await new Promise((r) => setTimeout(r, 100));
    expect(fs.existsSync(state)).toBe(true);
    p.child.kill('SIGKILL');
    await p.done;
    expect(fs.existsSync(path.join(killed, 'results.arrow'))).toBe(false);
    const r = await run(['study', seed0, '--out', killed]);
    expect(r.code, r.stderr).toBe(0);
    expect(rowsOf(killed)).toEqual(rowsOf(one).slice(0, 2));
    // A finished study reruns nothing.
    const again = await run(['study', seed0, '--out', killed]);
    expect(again.stderr).toContain('done before, kept');
  });

  it('starts again a job that was stopped before its first checkpoint', async () => {
    const out = path.join(dir, 'early-stop');
    const run = path.join(out, 'jobs', 'g_baseline_s0', 'run');
    fs.mkdirSync(run, { recursive: true });
    fs.writeFileSync(path.join(out, 'study.json'), JSON.stringify({ study: tinySpec.name }));
    fs.writeFileSync(path.join(run, 'config.json'), '{"half": "written"}'); // what a killed start leaves
    const { values, positionals } = parse(studyCommand, [specFile, '--out', out, '--only', '^g_baseline_s0$', '--json']);
    await studyCommand.run(values, positionals);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'jobs', 'g_baseline_s0', 'result.json'), 'utf8')).weightsSha256).toBe(rowsOf(one)[0].weights_sha256);
  });

  it('refuses an --out that is not its own study folder, and leaves it untouched', async () => {
    const mine = path.join(dir, 'users-folder');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'thesis.tex'), 'mine');
    const r = await run(['study', specFile, '--out', mine]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('is not a study folder');
    expect(fs.readdirSync(mine)).toEqual(['thesis.tex']);
  });
});
