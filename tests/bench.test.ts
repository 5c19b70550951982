/**
 * The bench's own trustworthiness: ratios taken per interleaved repeat with their spread, its
 * command line, and the pausing of a background study (stopped while the bench runs, continued
 * when it exits, also on SIGINT). The "study" here is a stand-in process this test starts, named
 * like tvlens (`…/cli/main.js study`); the test never signals a process it did not start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBenchArgs } from '../src/bench/args.js';
import { findTvlensProcesses, pauseProcesses, runsTvlens } from '../src/bench/pause.js';
import { BASE, fitCurve, flopsOf, forwardFlops, logSlope, scaleFigures, scalePoints } from '../src/bench/scale.js';
import { Samples, sampleInterleaved, spread } from '../src/bench/timing.js';

const ROOT = path.resolve(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-bench-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A process whose command line reads `node <dir>/cli/main.js study <tag>`: it only sleeps. */
function fakeStudy(tag: string): ChildProcess {
  const script = path.join(dir, 'cli', 'main.js');
  fs.mkdirSync(path.dirname(script), { recursive: true });
  fs.writeFileSync(script, 'setInterval(() => {}, 1000);\n');
  const child = spawn(process.execPath, [script, 'study', tag], { stdio: 'ignore' });
  children.push(child);
  return child;
}

/** The process state letter from /proc/<pid>/stat: 'T' when stopped. */
function state(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0];
}

const waitFor = async (cond: () => boolean, ms = 10000) => {
  for (const t0 = Date.now(); !cond(); ) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('bench timing', () => {
  it('takes a ratio per repeat, so a slow repeat that slows both sides leaves it unchanged', () => {
    const s = new Samples({ a: [10, 40, 12], b: [5, 20, 4] });
    expect(s.ratio('a', 'b')).toEqual({ median: 2, min: 2, max: 3, n: 3 });
    expect(s.time('a')).toEqual({ median: 12, min: 10, max: 40, n: 3 });
    expect(spread([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, n: 4 });
  });

  it('warms up untimed, then alternates the functions for the timed repeats', async () => {
    const calls: string[] = [];
    const s = await sampleInterleaved({ a: async () => calls.push('a'), b: async () => calls.push('b') }, { timed: 3, warmup: 1, quick: false });
    expect(calls.join('')).toBe('abababab');
    expect(s.ms.a).toHaveLength(3);
    expect(s.repeats).toBe(3);
  });
});

describe('bench command line', () => {
  const groups = ['train', 'cache'];
  it('runs every default group with 5 repeats, pausing studies, unless told otherwise', () => {
    expect(parseBenchArgs([], groups, ['scale'])).toEqual({ groups, repeats: { timed: 5, warmup: 1, quick: false }, pause: ['study'] });
    const quick = parseBenchArgs(['cache', '--quick', '--no-pause'], groups, ['scale']);
    expect(quick.groups).toEqual(['cache']);
    expect(quick.repeats.quick).toBe(true);
    expect(quick.repeats.timed).toBeLessThan(5);
    expect(quick.pause).toEqual([]);
    expect(parseBenchArgs(['scale', '--pause', 'study,train'], groups, ['scale'])).toMatchObject({ groups: ['scale'], pause: ['study', 'train'] });
  });

  it('refuses an unknown group or a --pause without a list, naming the choices', () => {
    expect(() => parseBenchArgs(['trian'], groups)).toThrow(/unknown bench group or flag 'trian'. Should be one of: train, cache/);
    expect(() => parseBenchArgs(['--pause'], groups)).toThrow(/--pause needs/);
  });
});

describe.skipIf(process.platform !== 'linux')('pausing a background study', () => {
  it('recognises tvlens command lines by entry point and subcommand', () => {
    expect(runsTvlens(['node', '/x/dist/src/cli/main.js', 'study', 's.json'], ['study'])).toBe(true);
    expect(runsTvlens(['/usr/bin/tvlens', 'study', 's.json'], ['study'])).toBe(true);
    expect(runsTvlens(['node', '/x/dist/src/cli/main.js', 'train'], ['study'])).toBe(false);
    expect(runsTvlens(['node', 'other.js', 'study'], ['study'])).toBe(false);
  });

  it('finds a study process, stops it, and continues it on resume', async () => {
    const child = fakeStudy('resume');
    await waitFor(() => findTvlensProcesses(['study']).some((p) => p.pid === child.pid));
    const mine = findTvlensProcesses(['study']).filter((p) => p.pid === child.pid);
    const { paused, resume } = pauseProcesses(mine);
    expect(paused.map((p) => p.pid)).toEqual([child.pid]);
    await waitFor(() => state(child.pid!) === 'T');
    resume();
    await waitFor(() => state(child.pid!) !== 'T');
  });

  it('stops it again after someone else continued it (an old bench run by compare resumes the study it found paused)', async () => {
    const child = fakeStudy('again');
    await waitFor(() => findTvlensProcesses(['study']).some((p) => p.pid === child.pid));
    const { stopAgain, resume } = pauseProcesses(findTvlensProcesses(['study']).filter((p) => p.pid === child.pid));
    await waitFor(() => state(child.pid!) === 'T');
    process.kill(child.pid!, 'SIGCONT');
    await waitFor(() => state(child.pid!) !== 'T');
    stopAgain();
    await waitFor(() => state(child.pid!) === 'T');
    resume();
    stopAgain(); // after resume, nothing is stopped again
    await waitFor(() => state(child.pid!) !== 'T');
  });

  it('continues the study when the pausing process is interrupted (SIGINT)', async () => {
    const child = fakeStudy('sigint');
    const pauser = spawn(
      process.execPath,
      ['--import', 'tsx', '-e', `import { pauseProcesses } from ${JSON.stringify(path.join(ROOT, 'src/bench/pause.ts'))}; pauseProcesses([{ pid: ${child.pid}, command: 'study' }]); console.log('paused'); setInterval(() => {}, 1000);`],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(pauser);
    await new Promise<void>((resolve) => pauser.stdout!.on('data', () => resolve()));
    await waitFor(() => state(child.pid!) === 'T');
    pauser.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => pauser.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    await waitFor(() => state(child.pid!) !== 'T');
  }, 60000);
});

describe('bench scale', () => {
  it('fits the growth exponent as the slope of log cost against log size', () => {
    expect(logSlope([64, 128, 256, 512], [3, 12, 48, 192])).toBeCloseTo(2, 10);
    expect(logSlope([2, 4, 8], [5, 10, 20])).toBeCloseTo(1, 10);
  });

  it('varies one axis at a time around the base point, plus the goal point without analyses', () => {
    const points = scalePoints();
    expect(points).toHaveLength(10);
    const base = points.find((p) => p.dModel === 128 && p.layers === 4 && p.seq === 256)!;
    expect(base.axes.sort()).toEqual(['dModel', 'layers', 'seq']);
    expect(points.filter((p) => p.axes.includes('dModel')).map((p) => p.dModel).sort((a, b) => a - b)).toEqual([64, 128, 256, 512]);
    expect(points.filter((p) => p.axes.includes('seq')).map((p) => p.seq).sort((a, b) => a - b)).toEqual([64, 256, 1024]);
    expect(points.filter((p) => p.goal)).toMatchObject([{ dModel: 512, layers: 8, analyses: false }]);
    for (const p of points) expect(p.tokens % p.seq).toBe(0);
  });

  it('counts attention as quadratic in sequence, so a cost that follows the FLOPs has the arithmetic slope', () => {
    // Per prompt, the FLOPs of 24·d² per token grow as T; attention's 4·T·d per token as T².
    const perPrompt = (T: number) => forwardFlops({ dModel: 128, layers: 4, seq: T }, 1);
    expect(logSlope([64, 256, 1024], [64, 256, 1024].map(perPrompt))).toBeGreaterThan(1);
    expect(logSlope([64, 256, 1024], [64, 256, 1024].map(perPrompt))).toBeLessThan(2);
    const points = scalePoints().map((p) => ({ ...p, batch: p.tokens / p.seq, matmulGflops: 100, tvSearchMs: 1, patchSweepMs: 1, peakRssBytes: 1, seconds: 1, forwardMs: 0, trainMs: 0 }));
    const atPeak = points.map((p) => ({ ...p, forwardMs: flopsOf('forwardMs', p) / 1e8, trainMs: flopsOf('trainMs', p) / 1e8 }));
    const fit = fitCurve(atPeak);
    for (const axis of ['dModel', 'layers', 'seq'] as const) {
      expect(fit[axis].forwardMs.measured).toBeCloseTo(fit[axis].forwardMs.arithmetic, 10);
      expect(fit[axis].trainMs.measured).toBeCloseTo(fit[axis].trainMs.arithmetic, 10);
    }
    expect(fit.layers.trainMs.arithmetic).toBeCloseTo(1, 1); // linear in layers
    expect(scaleFigures({ command: '', commit: 'abc', date: '2026-01-01', base: BASE, tokensPerBatch: 4096, points: atPeak, exponents: fit }).scale_goal_train_peak_fraction).toBeCloseTo(1, 10);
  });
});
