/**
 * Faults beyond a bad argument, and how tvlens recovers from them: a second writer, kill -9 then
 * --resume, SIGINT and SIGTERM during a cache, a stale lock, a torn metrics line, a full disk and
 * a read-only one (small tmpfs mounts, only where root may mount them), and demo's own-run check.
 * Three subprocesses in all; the rest runs in-process.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { inferenceGraph } from '../src/model/inference.js';
import { readState } from '../src/checkpoint/state.js';
import { main } from '../src/cli/main.js';
import { hooksReport } from '../src/cli/hooks.js';
import { loadRunConfig, resolveRunConfig } from '../src/train/config.js';
import { latestCheckpoint } from '../src/runs/folder.js';
import { train } from '../src/train/loop.js';
import { foreignEntries, removeRunFiles } from '../src/train/run-folder.js';
import { handModel, handTaskConfig } from './support/tv-hand-model.js';

const REPO = path.resolve(__dirname, '..');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-faults-'));
const at = (...p: string[]) => path.join(root, ...p);
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  fs.rmSync(root, { recursive: true, force: true });
});

const microUser = (steps: number, every = 3) => ({
  model: { layers: 1, dModel: 16, heads: 2, maxSeq: 32 },
  task: { vocab: 8, demos: { min: 2, max: 4 }, heldoutTasks: 2 },
  optimizer: { lr: 0.003, warmupSteps: 2 },
  train: { steps, batchSize: 8, evalEvery: every, evalPrompts: 16, checkpointEvery: every },
});
const micro = (steps: number, every = 3) => resolveRunConfig(microUser(steps, every));
const configFile = (name: string, steps: number, every = 3) => {
  const f = at(`${name}.json`);
  fs.writeFileSync(f, JSON.stringify(microUser(steps, every)));
  return f;
};

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const err: string[] = [];
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true),
    vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (err.push(String(c)), true)),
    vi.spyOn(console, 'log').mockImplementation(() => {}),
  ];
  try {
    return { code: await main(args), stderr: err.join('') };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

/** The CLI as its own process, as a user runs it. */
const spawnCli = (args: string[]): ChildProcess => spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
const exited = (p: ChildProcess) => new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => {
  let stderr = '';
  p.stderr!.on('data', (d) => (stderr += d));
  // A process that ends by a signal's default action (as tvlens does after its clean-up) has no
  // exit code; a shell reports it as 128 + the signal's number, and so does this.
  p.on('exit', (code, signal) => resolve({ code: code ?? 128 + os.constants.signals[signal!], signal, stderr }));
});
async function until(cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
const files = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String) : []);
const leftovers = (dir: string) => files(dir).filter((f) => /\.tmp$|\.tvlens\.lock$/.test(f));
const oneLine = (stderr: string) => stderr.split('\n').filter((l) => l.trim() && !/^npm warn/.test(l));

/** Every checkpoint in the run opens, its weights match its manifest, and metrics.jsonl parses. */
function expectConsistentRun(dir: string): void {
  for (const f of fs.readdirSync(path.join(dir, 'checkpoints')).filter((f) => f.endsWith('.json'))) loadCheckpoint(path.join(dir, 'checkpoints', f));
  for (const l of fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')) expect(() => JSON.parse(l)).not.toThrow();
  expect(leftovers(dir)).toEqual([]);
}

describe('faults and recoveries', { timeout: 120_000 }, () => {
  it('a second writer is refused while the first trains; after kill -9 the stale lock is taken over and --resume continues exactly', async () => {
    const cfgFile = configFile('long', 100_000, 4);
    const out = at('killed');
    const child = spawnCli(['train', '--config', cfgFile, '--out', out]);
    const done = exited(child);
    await until(() => fs.existsSync(path.join(out, 'checkpoints', 'step-000008.state')));
    // The concurrent writer: refused with one line naming the first one, whether resuming or starting.
    for (const extra of [['--resume'], []]) {
      const second = await cli(['train', '--config', cfgFile, '--out', out, ...extra]);
      expect(second.code).toBe(1);
      expect(oneLine(second.stderr)).toEqual([expect.stringMatching(new RegExp(`being written by process ${child.pid} on ${os.hostname()}`))]);
    }
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    expect(fs.existsSync(path.join(out, '.tvlens.lock'))).toBe(true); // left behind by kill -9
    const resumedFrom = latestCheckpoint(out)!.step;
    const r = await cli(['train', '--config', cfgFile, '--out', out, '--resume', '--stop-after', String(resumedFrom + 4), '--json']);
    expect(r.code, r.stderr).toBe(0);
    expectConsistentRun(out);
    // The same steps without the kill give the same weights and moments.
    const straight = at('straight');
    await train(micro(100_000, 4), straight, { stopAfter: resumedFrom + 4 });
    const name = `step-${String(resumedFrom + 4).padStart(6, '0')}.state`;
    const [a, b] = [readState(path.join(straight, 'checkpoints', name)), readState(path.join(out, 'checkpoints', name))];
    expect(b.rng).toEqual(a.rng);
    for (const [k, v] of a.params) expect(b.params.get(k)).toEqual(v);
    for (const [k, v] of a.v) expect(b.v.get(k)).toEqual(v);
  });

  it('SIGINT during training removes the lock and temporaries, and the run resumes', async () => {
    const cfgFile = configFile('long-int', 100_000, 4);
    const out = at('interrupted');
    const child = spawnCli(['train', '--config', cfgFile, '--out', out]);
    const done = exited(child);
    await until(() => fs.existsSync(path.join(out, 'checkpoints', 'step-000004.state')));
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    expect(leftovers(out)).toEqual([]);
    const from = latestCheckpoint(out)!.step;
    const resumed = await cli(['train', '--config', cfgFile, '--out', out, '--resume', '--stop-after', String(from + 4), '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expectConsistentRun(out);
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s during a cache removes its temporary file and leaves no cache under the final name', async (signal, code) => {
    const { cfg, params } = handModel();
    const ck = path.join(at('hand', 'checkpoints'), 'step-000050');
    if (!fs.existsSync(`${ck}.onnx`)) writeCheckpoint(ck, cfg, params, { step: 50, seed: 0, task: handTaskConfig(), metrics: {} });
    const out = at(`sig-${signal}`, 'c.arrow');
    const child = spawnCli(['cache', `${ck}.onnx`, '--out', out, '--prompts', '2000000', '--chunk', '64', '--positions', 'all']);
    const done = exited(child);
    await until(() => files(path.dirname(out)).some((f) => f.endsWith('.tmp') && fs.statSync(path.join(path.dirname(out), f)).size > 0));
    child.kill(signal);
    const r = await done;
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(new RegExp(`stopped by ${signal}; temporary files and locks removed`));
    expect(files(path.dirname(out))).toEqual([]);
  });

  // onnxruntime-node runs a model on the main thread: one run over 16 000 prompts held SIGTERM off
  // for 80 s. The analyses' runs are sliced, so the signal waits at most one slice.
  it.each([
    ['patch', []],
    ['patch', ['--method', 'attribution']],
  ] as const)('SIGTERM during %s %s on many prompts stops it within 2 s, after a progress line', async (command, extra) => {
    const { cfg, params } = handModel();
    const ck = path.join(at('hand-term', 'checkpoints'), 'step-000050');
    if (!fs.existsSync(`${ck}.onnx`)) writeCheckpoint(ck, cfg, params, { step: 50, seed: 0, task: handTaskConfig(), metrics: {} });
    const child = spawnCli([command, `${ck}.onnx`, ...extra, '--prompts', '3000']);
    const done = exited(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    await until(() => /\d+\/\d+/.test(stderr)); // the first progress line: the work has begun
    await new Promise((r) => setTimeout(r, 1500)); // well into the clean and corrupted runs
    const t0 = Date.now();
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code).toBe(143);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  // A training step is one ONNX Runtime run, synchronous in onnxruntime-node: on the main thread, a
  // step of several seconds (a 38M-parameter model) held SIGTERM off until it ended. Steps run on a
  // worker thread, so the signal is served mid-step. Here a small model with a large batch makes
  // each step take seconds without a long build.
  it('SIGTERM in the middle of a long training step stops it within 2 s and removes the lock', async () => {
    const cfgFile = at('long-step.json');
    fs.writeFileSync(
      cfgFile,
      JSON.stringify({
        model: { layers: 2, dModel: 64, heads: 2, maxSeq: 256 },
        task: { vocab: 8, demos: { min: 60, max: 60 }, heldoutTasks: 2 },
        optimizer: { lr: 0.003, warmupSteps: 2 },
        train: { steps: 1000, batchSize: 256, evalEvery: 1000, evalPrompts: 16, checkpointEvery: 1000 },
      }),
    );
    const out = at('long-step');
    const child = spawnCli(['train', '--config', cfgFile, '--out', out]);
    const done = exited(child);
    const seen: { at: number; step: number }[] = [];
    child.stderr!.on('data', (d) => {
      for (const m of String(d).matchAll(/ (\d+)\/1000 /g)) seen.push({ at: Date.now(), step: Number(m[1]) });
    });
    await until(() => seen.length >= 2 && seen.at(-1)!.step > seen[0].step); // two steps done: steps are running
    const [a, b] = [seen[0], seen.at(-1)!];
    const stepMs = (b.at - a.at) / (b.step - a.step);
    await new Promise((r) => setTimeout(r, Math.min(stepMs / 3, 500))); // inside the next step
    const t0 = Date.now();
    child.kill('SIGTERM');
    const r = await done;
    const waited = Date.now() - t0;
    expect(r.code).toBe(143);
    expect(r.stderr).toMatch(/stopped by SIGTERM; temporary files and locks removed/);
    expect(waited).toBeLessThan(2000);
    expect(waited).toBeLessThan(stepMs); // it did not wait for the step in flight to end
    expect(leftovers(out)).toEqual([]);
  });

  it('a lock whose process is gone, or an unreadable lock a minute old, is taken over', async () => {
    const dead = spawnSync('true').pid!;
    for (const [name, lock] of [
      ['stale', JSON.stringify({ pid: dead, host: os.hostname(), started: 'then', command: 'train' })],
      ['unreadable', ''],
    ]) {
      const out = at(`lock-${name}`);
      fs.mkdirSync(out);
      fs.writeFileSync(path.join(out, '.tvlens.lock'), lock);
      const old = new Date(Date.now() - 120_000);
      fs.utimesSync(path.join(out, '.tvlens.lock'), old, old);
      const r = await cli(['train', '--config', configFile('short', 3), '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(latestCheckpoint(out)?.step).toBe(3);
      expect(leftovers(out)).toEqual([]);
    }
  });

  it('a resume drops a metrics line torn by a kill and the temporaries a killed writer left', async () => {
    const out = at('torn');
    await train(micro(6), out, { stopAfter: 3 });
    fs.appendFileSync(path.join(out, 'metrics.jsonl'), '{"step": 4, "trainLo');
    fs.writeFileSync(path.join(out, 'checkpoints', `step-000006.onnx.${999999}.tmp`), 'half a model');
    const r = await cli(['train', '--config', configFile('six', 6), '--out', out, '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expectConsistentRun(out);
    expect(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step)).toEqual([3, 6]);
  });

  it('a run that stopped before its first checkpoint is started again without --resume; the same folder with another config is refused', async () => {
    const out = at('restart');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'config.json'), `${JSON.stringify(micro(3), null, 2)}\n`);
    fs.writeFileSync(path.join(out, 'metrics.jsonl'), '');
    const other = await cli(['train', '--config', configFile('other', 6), '--out', out]);
    expect(other.code).toBe(1);
    expect(oneLine(other.stderr)).toEqual([expect.stringMatching(/holds an unfinished run of another config/)]);
    const same = await cli(['train', '--config', configFile('three', 3), '--out', out]);
    expect(same.code, same.stderr).toBe(0);
    expectConsistentRun(out);
  });

  it("demo's --fresh removes only a run's own files, and refuses a folder holding anything else", async () => {
    const out = at('own');
    await train(micro(3), out);
    fs.writeFileSync(path.join(out, 'checkpoints', 'my-notes.txt'), 'keep me');
    expect(removeRunFiles(out)).toEqual(['checkpoints/my-notes.txt']);
    expect(fs.readFileSync(path.join(out, 'checkpoints', 'my-notes.txt'), 'utf8')).toBe('keep me');
    expect(latestCheckpoint(out)?.step).toBe(3); // nothing was removed
    fs.rmSync(path.join(out, 'checkpoints', 'my-notes.txt'));
    expect(removeRunFiles(out)).toEqual([]);
    expect(fs.readdirSync(out)).toEqual([]);
    expect(foreignEntries(at('nowhere'))).toEqual([]);
  });

  it('cache-info --model matches the same weights opened without their manifest, and still refuses other weights', async () => {
    const { cfg, params } = handModel();
    const ck = at('hand-ci', 'step-000050');
    writeCheckpoint(ck, cfg, params, { step: 50, seed: 0, task: handTaskConfig(), metrics: {} });
    const cache = at('hand-ci', 'c.arrow');
    expect((await cli(['cache', `${ck}.onnx`, '--out', cache, '--prompts', '4', '--json'])).code).toBe(0);
    const bare = at('bare', 'model.onnx');
    fs.mkdirSync(path.dirname(bare));
    fs.copyFileSync(`${ck}.onnx`, bare);
    const same = await cli(['cache-info', cache, '--model', bare, '--json']);
    expect(same.code, same.stderr).toBe(0);
    const changed = handModel().params;
    for (const v of changed.values()) v[0] += 0.5;
    const other = at('other-ci', 'step-000050');
    writeCheckpoint(other, cfg, changed, { step: 50, seed: 0, task: handTaskConfig(), metrics: {} });
    fs.rmSync(`${other}.json`);
    const differs = await cli(['cache-info', cache, '--model', `${other}.onnx`]);
    expect(differs.code).toBe(1);
    expect(oneLine(differs.stderr)).toEqual([expect.stringMatching(/was made from model .*, not /)]);
  });

  it("hooks on tvlens's own rotary model without its manifest suggests resid_pre at the embeddings, not at the first attention output", async () => {
    const run = loadRunConfig('tiny');
    const params = new Map(inferenceGraph(run.model).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
    const ck = at('rotary', 'step-000001');
    writeCheckpoint(ck, run.model, params, { step: 1, seed: 0, task: run.task, metrics: {} });
    const bare = at('rotary', 'bare.onnx');
    fs.copyFileSync(`${ck}.onnx`, bare);
    const r = await hooksReport(bare);
    expect(r.candidates!.map((c) => c.suggested)).toEqual(['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_mid', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_mid', 'blocks.1.hook_resid_post']);
    expect(r.candidates![0].tensor).toMatch(/^embed\//);
  });

  /** A tmpfs of `size` mounted at `dir` (read-only with ro), or null where this process may not mount. */
  function mount(dir: string, size: string, ro = false): string | null {
    fs.mkdirSync(dir, { recursive: true });
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${ro ? ',ro' : ''}`, 'tmpfs', dir]);
    if (r.status !== 0) return null;
    mounts.push(dir);
    return dir;
  }
  const canMount = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('which', ['mount']).status === 0;

  it.skipIf(!canMount)('a full disk stops training with one line, no partial file, and a run that restarts once there is room (needs root for a tmpfs)', async () => {
    const disk = mount(at('full'), '1m');
    if (!disk) return void console.warn('skipped: cannot mount a tmpfs here');
    const out = path.join(disk, 'run');
    const filler = path.join(disk, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(1024 * 1024 - 48 * 1024));
    const cfg = configFile('full', 3);
    const r = await cli(['train', '--config', cfg, '--out', out, '--json']);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toEqual([expect.stringMatching(/cannot write .*full\/run\/.*: the disk is full; free some space/)]);
    expect(files(out).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock'))).toEqual([]);
    expect(files(path.join(out, 'checkpoints')).filter((f) => f.endsWith('.state'))).toEqual([]);
    const resume = await cli(['train', '--config', cfg, '--out', out, '--resume']);
    expect(oneLine(resume.stderr)).toEqual([expect.stringMatching(/no complete checkpoint yet .*start it again without --resume/)]);
    fs.rmSync(filler);
    const again = await cli(['train', '--config', cfg, '--out', out]);
    expect(again.code, again.stderr).toBe(0);
    expectConsistentRun(out);
  });

  it.skipIf(!canMount)('a read-only disk is one line naming the path, for train and cache (needs root for a tmpfs)', async () => {
    const disk = mount(at('ro'), '1m', true);
    if (!disk) return void console.warn('skipped: cannot mount a read-only tmpfs here');
    const t = await cli(['train', '--config', configFile('ro', 3), '--out', path.join(disk, 'run')]);
    expect(t.code).toBe(1);
    expect(oneLine(t.stderr)).toEqual([expect.stringMatching(/ro\/run: the file system is read-only/)]);
    const { cfg, params } = handModel();
    const ck = at('hand-ro', 'step-000050');
    writeCheckpoint(ck, cfg, params, { step: 50, seed: 0, task: handTaskConfig(), metrics: {} });
    const c = await cli(['cache', `${ck}.onnx`, '--out', path.join(disk, 'c.arrow'), '--prompts', '4']);
    expect(c.code).toBe(1);
    expect(oneLine(c.stderr)).toEqual([expect.stringMatching(/c\.arrow.*: the file system is read-only/)]);
  });
});
