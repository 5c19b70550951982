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
  });
});
