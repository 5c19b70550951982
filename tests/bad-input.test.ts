/**
 * The bad-input suite: every command against a catalogue of bad inputs and faults, run in-process
 * through the CLI's own `main`. Each refusal must exit 1 with exactly one line on stderr that
 * names the problem, no stack trace, no temporary file left anywhere, and nothing changed in the
 * sandbox (so no file under a final name that was not complete, and nothing outside the output
 * path touched). Recoveries (a stale lock, a torn metrics line, kill -9, SIGINT, a full disk) are
 * tested after the table. Most cases need no training; the few that do share one micro run.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { readState, writeState } from '../src/checkpoint/state.js';
import { type CliResult, runCli } from './support/cli.js';
import { resolveRunConfig } from '../src/train/config.js';
import { latestCheckpoint } from '../src/runs/folder.js';
import { train } from '../src/train/loop.js';
import { handModel, handTaskConfig } from './support/tv-hand-model.js';

const REPO = path.resolve(__dirname, '..');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-bad-'));
const at = (...p: string[]) => path.join(root, ...p);

// ── fixtures ──────────────────────────────────────────────────────────────────────────────────
const { cfg: handCfg, params: handParams } = handModel();
writeCheckpoint(at('hand', 'checkpoints', 'step-000050'), handCfg, handParams, { step: 50, seed: 0, task: handTaskConfig(), metrics: {} });
const CK = at('hand', 'checkpoints', 'step-000050.onnx');
const microUser = (steps: number, extra: Record<string, unknown> = {}) => ({
  model: { layers: 1, dModel: 16, heads: 2, maxSeq: 32 },
  task: { vocab: 8, demos: { min: 2, max: 4 }, heldoutTasks: 2 },
  optimizer: { lr: 0.003, warmupSteps: 2 },
  train: { steps, batchSize: 8, evalEvery: 3, evalPrompts: 16, checkpointEvery: 3, ...extra },
});
const MICRO = at('micro.json');
fs.writeFileSync(MICRO, JSON.stringify(microUser(6)));
const write = (rel: string, data: string | Uint8Array) => {
  fs.mkdirSync(path.dirname(at(rel)), { recursive: true });
  fs.writeFileSync(at(rel), data);
  return at(rel);
};
const USER_DIR = at('user');
write('user/thesis.tex', '\\documentclass{article}');
const USER_FILE = write('notes.txt', 'my notes');
const A_FILE = write('afile', 'a plain file');
const EMPTY = write('empty.json', '');
const BAD_JSON = write('bad.json', '{"model": {"layers": 2,');
const ARRAY_JSON = write('array.json', '[1, 2, 3]');
const NOT_ARROW = write('not.arrow', 'hello, not arrow');
const USER_HTML = write('page.html', '<html><body>mine</body></html>');
const USER_JSON = write('mine.json', '{"mine": true}');
const ckBytes = fs.readFileSync(CK);
const TEXT_ONNX = write('junk/text.onnx', 'not a model at all');
const EMPTY_ONNX = write('junk/empty.onnx', '');
const TRUNC_ONNX = write('junk/trunc.onnx', ckBytes.subarray(0, 200));
const manifest = JSON.parse(fs.readFileSync(CK.replace(/\.onnx$/, '.json'), 'utf8'));
const withManifest = (dir: string, m: unknown | string, onnx: Uint8Array = ckBytes) => {
  write(`${dir}/step-000001.onnx`, onnx);
  write(`${dir}/step-000001.json`, typeof m === 'string' ? m : JSON.stringify(m));
  return at(dir, 'step-000001.onnx');
};
const CORRUPT_MANIFEST = withManifest('m-corrupt', '{"format": "tvlens-checkpoint/1", "onnx": ');
const EMPTY_MANIFEST = withManifest('m-empty', '');
const FOREIGN_MANIFEST = withManifest('m-foreign', { format: 'something-else' });
const PARTIAL_MANIFEST = withManifest('m-partial', { format: 'tvlens-checkpoint/1' });
const HASH_MISMATCH = withManifest('m-hash', { ...manifest, onnx: 'step-000001.onnx', weightsSha256: '0'.repeat(64) });
const MISSING_ONNX = (() => {
  write('m-missing/step-000001.json', JSON.stringify({ ...manifest, onnx: 'gone.onnx' }));
  return at('m-missing', 'step-000001.json');
})();
const NO_MANIFEST = write('m-none/model.onnx', ckBytes);
const OTHER_WEIGHTS = withManifest('m-other', { ...manifest, onnx: 'step-000001.onnx', weightsSha256: 'a'.repeat(64) });
const HOOKMAP_BAD = write('maps/bad.json', '{"hooks": ');
const HOOKMAP_ARRAY = write('maps/array.json', '[]');
const EMPTY_RUN = at('empty-run');
fs.mkdirSync(EMPTY_RUN);
const BIG_MODEL = write('configs/big-model.json', JSON.stringify({ ...microUser(6), model: { layers: 2, dModel: 8192, heads: 8, maxSeq: 32 } }));
const BIG_BATCH = write('configs/big-batch.json', JSON.stringify(microUser(6, { batchSize: 1e9 })));
const FRACTION_SEED = write('configs/seed.json', JSON.stringify(microUser(6, { seed: 1.5 })));
const HUGE_SEED = write('configs/huge-seed.json', JSON.stringify(microUser(6, { seed: 2 ** 53 + 2 })));
const UNKNOWN_KEY = write('configs/unknown.json', JSON.stringify({ ...microUser(6), modle: {} }));
const ZERO_STEPS = write('configs/zero.json', JSON.stringify(microUser(0)));
const LONG_DEMOS = write('configs/long.json', JSON.stringify({ ...microUser(6), task: { vocab: 8, demos: { min: 2, max: 40 }, heldoutTasks: 2 } }));
const HUGE_DEMOS = write('configs/huge-demos.json', JSON.stringify({ ...microUser(6), task: { vocab: 8, demos: { min: 2, max: 1e9 }, heldoutTasks: 2 } }));
const OTHER_TASK = write('configs/task16.json', JSON.stringify({ kind: 'discrete', vocab: 16, demos: { min: 4, max: 4 } }));
const VECTOR_TASK = write('configs/linreg.json', JSON.stringify({ kind: 'linreg', demos: { min: 4, max: 4 } }));

// Runs: RUN finished (6 steps, checkpoints at 3 and 6), PARTIAL stopped at 3, OTHER another run of the same config.
const RUN = at('runs', 'done');
const PARTIAL = at('runs', 'partial');
const OTHER = at('runs', 'other');
const micro = (steps: number) => resolveRunConfig(microUser(steps));
let CACHE = '';

/** A fresh copy of a fixture run for a case that changes it; made before the case's snapshot. */
const copyRun = (from: string, name: string) => {
  const to = at('cases', name);
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
  return to;
};
const state = (dir: string, step: number) => path.join(dir, 'checkpoints', `step-${String(step).padStart(6, '0')}.state`);

beforeAll(async () => {
  await train(micro(6), RUN);
  await train(micro(6), PARTIAL, { stopAfter: 3 });
  await train(micro(6), OTHER, { stopAfter: 3 });
  CACHE = at('c.arrow');
  const r = await cli(['cache', CK, '--out', CACHE, '--prompts', '8', '--json']);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

// ── the runner ────────────────────────────────────────────────────────────────────────────────
type Result = CliResult;
const cli = runCli;


/** Every file under `dir` with its size and modification time. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        out.set(`${path.relative(root, p)}/`, 'dir');
        walk(p);
      } else {
        const st = fs.statSync(p);
        out.set(path.relative(root, p), `${st.size}:${st.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out;
}

/** Temporaries and locks left in `dir` that were not there `before`. */
const leftovers = (dir: string, before: Map<string, string>) => [...snapshot(dir).keys()].filter((f) => /\.tmp$|\.lock$/.test(f) && !before.has(f));

/** Asserts a clean refusal: the code, one line naming the problem, no stack, nothing changed. */
function expectRefusal(r: Result, want: RegExp, before: Map<string, string>, code = 1): void {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(r.code, r.stderr).toBe(code);
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tvlens( [\w-]+)?: (error: )?/);
  expect(lines[0]).not.toMatch(/internal error/);
  expect(lines[0]).toMatch(want);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  const after = snapshot(root);
  expect([...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k), 'changed or new files').toEqual([]);
  expect([...before.keys()].filter((k) => !after.has(k)), 'removed files').toEqual([]);
}

interface Case {
  /** What is wrong, as the test's name. */
  readonly name: string;
  readonly args: () => string[];
  /** The one stderr line must match this. */
  readonly want: RegExp;
  /** Makes the case's own inputs, before the snapshot. */
  readonly setup?: () => void;
  readonly code?: number;
}

const ck = () => CK;
const cases: Record<string, Case[]> = {};
const add = (group: string, list: Case[]) => (cases[group] = [...(cases[group] ?? []), ...list]);

// ── the command line itself ───────────────────────────────────────────────────────────────────
add('cli', [
  { name: 'an unknown command', args: () => ['trian'], want: /unknown command 'trian'.*Should be one of/ },
  ...['demo', 'train', 'tvp', 'eval', 'hooks', 'cache', 'cache-info', 'tv-search', 'patch', 'locality', 'report'].map((c) => ({
    name: `${c} with an unknown option`,
    args: () => [c, '--no-such-flag'],
    want: /no-such-flag/,
  })),
  { name: 'an option without its value', args: () => ['train', '--config'], want: /--config/ },
]);

// ── train ─────────────────────────────────────────────────────────────────────────────────────
const trainArgs = (...extra: string[]) => ['train', '--config', MICRO, '--out', at('cases', 'train-out'), ...extra];
add('train', [
  { name: 'no --config', args: () => ['train', '--out', at('x')], want: /--config: is required/ },
  { name: 'no --out', args: () => ['train', '--config', MICRO], want: /--out: is required/ },
  { name: 'an empty --out', args: () => ['train', '--config', MICRO, '--out', ''], want: /--out: is required/ },
  { name: 'a --config that is neither file nor preset', args: () => ['train', '--config', at('nope.json'), '--out', at('x')], want: /neither a file nor a preset/ },
  { name: 'a --config that is a folder', args: () => ['train', '--config', USER_DIR, '--out', at('x')], want: /is a folder, not a config file/ },
  { name: 'an empty --config file', args: () => ['train', '--config', EMPTY, '--out', at('x')], want: /empty\.json is not valid JSON/ },
  { name: 'a truncated --config file', args: () => ['train', '--config', BAD_JSON, '--out', at('x')], want: /bad\.json is not valid JSON/ },
  { name: 'a --config that is a JSON array', args: () => ['train', '--config', ARRAY_JSON, '--out', at('x')], want: /must be a JSON object/ },
  { name: 'a --config that is an ONNX model', args: () => ['train', '--config', CK, '--out', at('x')], want: /not valid JSON/ },
  { name: 'a config with an unknown key', args: () => ['train', '--config', UNKNOWN_KEY, '--out', at('x')], want: /modle: unknown key/ },
  { name: 'a config with train.steps 0', args: () => ['train', '--config', ZERO_STEPS, '--out', at('x')], want: /train\.steps: must be a positive integer/ },
  { name: 'a config with a fractional seed', args: () => ['train', '--config', FRACTION_SEED, '--out', at('x')], want: /train\.seed: must be an integer/ },
  { name: 'a config with a seed beyond 2^53', args: () => ['train', '--config', HUGE_SEED, '--out', at('x')], want: /train\.seed: must be an integer/ },
  { name: 'a config with a billion demos (once a hang)', args: () => ['train', '--config', HUGE_DEMOS, '--out', at('x')], want: /model\.maxSeq/ },
  { name: 'a config whose prompts exceed maxSeq', args: () => ['train', '--config', LONG_DEMOS, '--out', at('x')], want: /model\.maxSeq/ },
  { name: 'dModel 8192 (over the size tvlens trains)', args: () => ['train', '--config', BIG_MODEL, '--out', at('x')], want: /model: the model has \d+\.\dM parameters; .* up to 100M/ },
  { name: 'batchSize 1e9 (memory estimate)', args: () => ['train', '--config', BIG_BATCH, '--out', at('x')], want: /needs about .*GiB/ },
  { name: 'a model over --max-memory', args: () => trainArgs('--max-memory', '1K'), want: /needs about .*more than 1 KiB \(--max-memory\)/ },
  { name: '--max-memory that is not a size', args: () => trainArgs('--max-memory', 'lots'), want: /--max-memory: expected a size/ },
  { name: '--max-memory 0', args: () => trainArgs('--max-memory', '0'), want: /--max-memory: '0' is less than one byte/ },
  { name: '--max-memory 0.5 (once "not positive")', args: () => trainArgs('--max-memory', '0.5'), want: /--max-memory: '0\.5' is less than one byte/ },
  { name: '--max-memory 1B (once "more than 1 KiB")', args: () => trainArgs('--max-memory', '1B'), want: /more than 1 bytes \(--max-memory\)/ },
  ...[
    ['1.5', 'a fractional'],
    ['-1', 'a negative'],
    ['9007199254740993', 'a beyond-2^53'],
    ['4294967296', 'a beyond-32-bit'],
    ['abc', 'a non-numeric'],
    ['', 'an empty'],
    ['0x10', 'a hexadecimal'],
    ['1e400', 'an infinite'],
  ].map(([v, what]) => ({ name: `${what} --seed`, args: () => trainArgs(`--seed=${v}`), want: /--seed: expected/ })),
  ...['0', '-5', '2.5', 'ten', ''].map((v) => ({ name: `--steps '${v}'`, args: () => trainArgs(`--steps=${v}`), want: /--steps: expected/ })),
  ...['-3', '0', '1.5', 'soon'].map((v) => ({ name: `--stop-after '${v}'`, args: () => trainArgs(`--stop-after=${v}`), want: /--stop-after: expected/ })),
  { name: '--out under /proc (once a hang)', args: () => ['train', '--config', MICRO, '--out', '/proc/tvlens-x/run'], want: /cannot make the folder \/proc\/tvlens-x/ },
  { name: '--out that is a file', args: () => ['train', '--config', MICRO, '--out', A_FILE], want: /afile is a file; --out must be a run folder/ },
  { name: '--out under a file', args: () => ['train', '--config', MICRO, '--out', path.join(A_FILE, 'run')], want: /afile\/[\w.]+: a part of the path is a file, not a folder/ },
  { name: '--out a folder of the user', args: () => ['train', '--config', MICRO, '--out', USER_DIR], want: /not empty and holds files that are not a tvlens run \(thesis\.tex\)/ },
  { name: '--out a finished run without --resume', args: () => ['train', '--config', MICRO, '--out', RUN], want: /already holds a run; pass --resume/ },
  { name: '--resume of a missing folder', args: () => ['train', '--config', MICRO, '--out', at('nowhere'), '--resume'], want: /nothing to resume: .*does not exist/ },
  { name: '--resume of an empty folder', args: () => ['train', '--config', MICRO, '--out', EMPTY_RUN, '--resume'], want: /nothing to resume: .*no config\.json/ },
  { name: '--resume of a user folder', args: () => ['train', '--config', MICRO, '--out', USER_DIR, '--resume'], want: /nothing to resume: .*not a tvlens run/ },
  { name: '--resume with another config', args: () => ['train', '--config', 'tiny', '--out', PARTIAL, '--resume'], want: /config differs/ },
  { name: '--resume of a finished run', args: () => ['train', '--config', MICRO, '--out', RUN, '--resume'], want: /finished all 6 steps/ },
  { name: '--resume with --stop-after before the run', args: () => ['train', '--config', MICRO, '--out', PARTIAL, '--resume', '--stop-after', '2'], want: /already at step 3; --stop-after must be later/ },
]);

// Corrupted state and run files: each case gets its own copy of the partial run.
const stateCase = (name: string, corrupt: (dir: string) => void, want: RegExp): Case => {
  const dir = at('cases', `state-${name.replace(/\W+/g, '-')}`);
  return {
    name,
    setup: () => {
      copyRun(PARTIAL, path.basename(dir));
      corrupt(dir);
    },
    args: () => ['train', '--config', MICRO, '--out', dir, '--resume'],
    want,
  };
};
const mutate = (file: string, f: (b: Buffer) => Buffer) => fs.writeFileSync(file, f(fs.readFileSync(file)));
add('state', [
  stateCase('a few changed bytes in the state', (d) => mutate(state(d, 3), (b) => (b.writeUInt32LE(b.readUInt32LE(b.length - 64) ^ 0x5a5a5a5a, b.length - 64), b)), /step-000003\.state is damaged or truncated \(its data checksum/),
  stateCase('a truncated state', (d) => mutate(state(d, 3), (b) => b.subarray(0, Math.floor(b.length / 2))), /step-000003\.state is damaged or truncated \(tensor .* runs past the end/),
  stateCase('a state cut inside its header', (d) => mutate(state(d, 3), (b) => b.subarray(0, 40)), /step-000003\.state is damaged or truncated \(its header claims/),
  stateCase('an empty state', (d) => fs.writeFileSync(state(d, 3), ''), /step-000003\.state is not a tvlens tensor bundle/),
  stateCase('a state that is text', (d) => fs.writeFileSync(state(d, 3), 'hello world, not a state file'), /not a tvlens tensor bundle/),
  stateCase('a state whose header is not JSON', (d) => mutate(state(d, 3), (b) => (b.write('}}}}', 12), b)), /damaged or truncated \(its header is not valid JSON\)/),
  stateCase('a state that is a folder', (d) => (fs.rmSync(state(d, 3)), fs.mkdirSync(state(d, 3))), /step-000003\.state is a folder/),
  stateCase("another run's state under this run's name", (d) => fs.copyFileSync(state(OTHER, 3), state(d, 3)), /step-000003\.state: it belongs to another run/),
  stateCase('an earlier state renamed to a later step (would overwrite newer checkpoints)', (d) => {
    const run = copyRun(RUN, 'state-shifted-src');
    fs.copyFileSync(state(run, 3), state(d, 9));
    fs.rmSync(run, { recursive: true });
  }, /step-000009\.state: it holds step 3, but its name says step 9/),
  stateCase('a state whose weights are not its checkpoint’s', (d) => {
    const s = readState(state(d, 3));
    for (const v of s.params.values()) (v as Float32Array)[0] += 1;
    writeState(state(d, 3), s);
  }, /weights do not match the checkpoint's manifest/),
  stateCase('a state missing a parameter', (d) => {
    const s = readState(state(d, 3));
    s.params.delete([...s.params.keys()][0]);
    writeState(state(d, 3), s);
  }, /its weights lack the parameter/),
  stateCase('a state with a resized parameter', (d) => {
    const s = readState(state(d, 3));
    const k = [...s.m.keys()][0];
    s.m.set(k, new Float32Array(3));
    writeState(state(d, 3), s);
  }, /first moments of .* have 3 elements/),
  stateCase('a state of another config', (d) => {
    const s = readState(state(d, 3));
    writeState(state(d, 3), { ...s, configSha256: 'f'.repeat(64) });
  }, /written with another config/),
  stateCase('a corrupt config.json', (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"model": '), /config\.json is not valid JSON/),
  stateCase('an empty config.json', (d) => fs.writeFileSync(path.join(d, 'config.json'), ''), /config\.json is empty/),
  stateCase('a corrupt run.json', (d) => fs.writeFileSync(path.join(d, 'run.json'), 'nope'), /run\.json is not valid JSON/),
  stateCase('no state at all (stopped before its first checkpoint)', (d) => fs.rmSync(path.join(d, 'checkpoints'), { recursive: true }), /no complete checkpoint yet .*start it again without --resume/),
  stateCase('a live writer holds the lock', (d) => fs.writeFileSync(path.join(d, '.tvlens.lock'), JSON.stringify({ pid: process.ppid, host: os.hostname(), started: 'now', command: 'train' })), new RegExp(`being written by process ${process.ppid} on`)),
  stateCase('a fresh lock that cannot be read', (d) => fs.writeFileSync(path.join(d, '.tvlens.lock'), ''), /being written by another process/),
]);

// ── tvp ───────────────────────────────────────────────────────────────────────────────────────
const tvpArgs = (...extra: string[]) => ['tvp', '--from', MICRO, '--out', at('cases', 'tvp-out'), ...extra];
add('tvp', [
  { name: 'no --from', args: () => ['tvp', '--out', at('x')], want: /--from: is required/ },
  { name: 'no --out', args: () => ['tvp', '--from', MICRO], want: /--out: is required/ },
  { name: '--out an existing run (once wrote artifacts into it)', args: () => ['tvp', '--from', MICRO, '--out', RUN], want: /already holds a run/ },
  { name: '--out a folder of the user', args: () => ['tvp', '--from', MICRO, '--out', USER_DIR], want: /holds files that are not a tvlens run/ },
  { name: '--out a file', args: () => ['tvp', '--from', MICRO, '--out', A_FILE], want: /is a file; --out must be a run folder/ },
  { name: '--position 999 (once a zero task vector)', args: () => tvpArgs('--position', '999'), want: /tvp\.position: must be -1 .* or a position 0\.\.\d+/ },
  { name: '--position -2', args: () => tvpArgs('--position=-2'), want: /--position: expected an integer ≥ -1/ },
  { name: '--demos 99 (longer than maxSeq)', args: () => tvpArgs('--demos', '99'), want: /tvp\.demos: prompts with 99 demos are \d+ positions long, more than model\.maxSeq 32/ },
  { name: '--demos 1e9 (once a hang)', args: () => tvpArgs('--demos', '1e9'), want: /tvp\.demos: prompts with 1000000000 demos/ },
  { name: '--demos 0', args: () => tvpArgs('--demos', '0'), want: /--demos: expected an integer ≥ 1/ },
  { name: '--layer 99', args: () => tvpArgs('--layer', '99'), want: /layer 99 is out of range: this model has layers 0\.\.1/ },
  { name: '--layer -1', args: () => tvpArgs('--layer=-1'), want: /--layer: expected an integer ≥ 0/ },
  { name: '--layer 0.5', args: () => tvpArgs('--layer', '0.5'), want: /--layer: expected an integer/ },
  { name: '--lambda -1', args: () => tvpArgs('--lambda=-1'), want: /--lambda: expected a number ≥ 0/ },
  { name: '--lambda abc', args: () => tvpArgs('--lambda', 'abc'), want: /--lambda: expected a number/ },
  { name: '--average 0', args: () => tvpArgs('--average', '0'), want: /--average: expected an integer ≥ 1/ },
  { name: '--average 3 (not a divisor of the batch)', args: () => tvpArgs('--average', '3'), want: /tvp\.average: must be a positive divisor of train\.batchSize 8/ },
  { name: '--steps 0', args: () => tvpArgs('--steps', '0'), want: /--steps: expected an integer ≥ 1/ },
  { name: '--seed 1.5', args: () => tvpArgs('--seed', '1.5'), want: /--seed: expected an integer 0\.\.4294967295/ },
  { name: '--from a missing file', args: () => ['tvp', '--from', at('none.onnx'), '--out', at('x')], want: /no manifest beside .*none\.onnx/ },
  { name: '--from a corrupt manifest', args: () => ['tvp', '--from', CORRUPT_MANIFEST, '--out', at('x')], want: /step-000001\.json is not valid JSON/ },
  { name: '--from a folder', args: () => ['tvp', '--from', RUN, '--out', at('x')], want: /--from .*done is a folder; give a checkpoint \(\.onnx\), a preset or a config file/ },
  { name: '--from an empty JSON file', args: () => ['tvp', '--from', EMPTY, '--out', at('x')], want: /empty\.json is empty/ },
  { name: '--from a model over --max-memory', args: () => tvpArgs('--max-memory', '10K'), want: /TVP training of this model needs about/ },
  { name: '--resume of a missing folder', args: () => tvpArgs('--resume'), want: /nothing to resume: .*does not exist/ },
  { name: '--resume of a plain run', args: () => ['tvp', '--from', MICRO, '--out', PARTIAL, '--resume'], want: /nothing to resume: .* is not a TVP run/ },
]);

// ── eval ──────────────────────────────────────────────────────────────────────────────────────
add('eval', [
  { name: 'no --group', args: () => ['eval'], want: /--group: give at least one/ },
  { name: 'a group with no models', args: () => ['eval', '--group', 'a='], want: /'a=' names no models/ },
  { name: 'a missing model', args: () => ['eval', '--group', `a=${at('gone.onnx')}`], want: /gone\.onnx does not exist/ },
  { name: 'a folder with no checkpoints', args: () => ['eval', '--group', `a=${EMPTY_RUN}`], want: /empty-run holds no checkpoints/ },
  { name: '--layer 99 (once dropped rows silently)', args: () => ['eval', '--group', `a=${CK}`, '--layer', '99'], want: /--layer: layer 99 is out of range for .*layers 0\.\.3/ },
  { name: '--layer -1', args: () => ['eval', '--group', `a=${CK}`, '--layer=-1'], want: /--layer: expected an integer ≥ 0/ },
  { name: '--prompts 0', args: () => ['eval', '--group', `a=${CK}`, '--prompts', '0'], want: /--prompts: expected an integer ≥ 1/ },
  { name: '--seed abc', args: () => ['eval', '--group', `a=${CK}`, '--seed', 'abc'], want: /--seed: expected a number/ },
  { name: '--out a folder', args: () => ['eval', '--group', `a=${CK}`, '--out', USER_DIR], want: /--out .*user is a folder/ },
  { name: "--out the user's own file", args: () => ['eval', '--group', `a=${CK}`, '--out', USER_JSON], want: /mine\.json exists and is not a file tvlens wrote/ },
  { name: 'a corrupt manifest', args: () => ['eval', '--group', `a=${CORRUPT_MANIFEST}`, '--layer', '1'], want: /is not valid JSON/ },
  { name: '--prompts 100000000 (memory estimate)', args: () => ['eval', '--group', `a=${CK}`, '--prompts', '100000000'], want: /evaluating .* needs about .*GiB.*lower --prompts/ },
  { name: 'a model over --max-memory', args: () => ['eval', '--group', `a=${CK}`, '--max-memory', '1K'], want: /needs about .*more than 1 KiB \(--max-memory\)/ },
]);

// ── hooks ─────────────────────────────────────────────────────────────────────────────────────
add('hooks', [
  { name: 'no model', args: () => ['hooks'], want: /expected one model file, got 0/ },
  { name: 'two models', args: () => ['hooks', CK, CK], want: /expected one model file, got 2/ },
  { name: 'a missing model', args: () => ['hooks', at('gone.onnx')], want: /gone\.onnx/ },
  { name: 'a folder', args: () => ['hooks', USER_DIR], want: /user/ },
  { name: 'an empty .onnx', args: () => ['hooks', EMPTY_ONNX], want: /empty\.onnx/ },
  { name: 'a text file named .onnx', args: () => ['hooks', TEXT_ONNX], want: /text\.onnx is not an ONNX model/ },
  { name: 'a truncated .onnx', args: () => ['hooks', TRUNC_ONNX], want: /trunc\.onnx is not an ONNX model/ },
  { name: 'a corrupt manifest beside', args: () => ['hooks', CORRUPT_MANIFEST.replace(/\.onnx$/, '.json')], want: /is not valid JSON/ },
  { name: 'a hook map that is not JSON', args: () => ['hooks', NO_MANIFEST, '--hook-map', HOOKMAP_BAD], want: /bad\.json/ },
  { name: 'a hook map that is an array', args: () => ['hooks', NO_MANIFEST, '--hook-map', HOOKMAP_ARRAY], want: /array\.json/ },
  { name: 'a missing hook map', args: () => ['hooks', NO_MANIFEST, '--hook-map', at('maps', 'gone.json')], want: /gone\.json/ },
]);

// ── cache and cache-info ──────────────────────────────────────────────────────────────────────
const cacheArgs = (...extra: string[]) => ['cache', CK, '--out', at('cases', 'c.arrow'), '--prompts', '4', ...extra];
add('cache', [
  { name: 'no --out', args: () => ['cache', CK], want: /--out: is required/ },
  { name: 'no model', args: () => ['cache', '--out', at('c2.arrow')], want: /expected one model file, got 0/ },
  { name: '--out a folder', args: () => ['cache', CK, '--out', USER_DIR], want: /--out .*user is a folder/ },
  { name: "--out the user's own file", args: () => ['cache', CK, '--out', USER_FILE], want: /notes\.txt exists and is not a file tvlens wrote/ },
  { name: '--out under a file', args: () => ['cache', CK, '--out', path.join(A_FILE, 'c.arrow')], want: /afile\/[\w.]+: a part of the path is a file, not a folder/ },
  ...['0', '-1', '1.5', 'many'].map((v) => ({ name: `--prompts '${v}'`, args: () => cacheArgs(`--prompts=${v}`), want: /--prompts: expected/ })),
  { name: '--seed -1', args: () => cacheArgs('--seed=-1'), want: /--seed: expected an integer 0\.\./ },
  { name: '--demos -1', args: () => cacheArgs('--demos=-1'), want: /--demos: expected an integer ≥ 0/ },
  { name: '--demos 99 (beyond the context)', args: () => cacheArgs('--demos', '99'), want: /--demos: prompts with 99 demos are \d+ positions long, more than the model's context of 24; the most that fit is 5/ },
  { name: '--demos 1e9', args: () => cacheArgs('--demos', '1e9'), want: /--demos: prompts with 1000000000 demos/ },
  { name: '--chunk 0', args: () => cacheArgs('--chunk', '0'), want: /--chunk: expected an integer ≥ 1/ },
  { name: '--threads 0', args: () => cacheArgs('--threads', '0'), want: /--threads: expected an integer 1\.\.1024/ },
  { name: '--threads 99999', args: () => cacheArgs('--threads', '99999'), want: /--threads: expected an integer 1\.\.1024/ },
  { name: "--blocks ''", args: () => cacheArgs('--blocks='), want: /--blocks: is empty/ },
  { name: '--blocks 3-1', args: () => cacheArgs('--blocks', '3-1'), want: /--blocks: '3-1' is an empty range/ },
  { name: '--blocks abc', args: () => cacheArgs('--blocks', 'abc'), want: /--blocks: 'abc' is not a block list/ },
  { name: '--blocks 0-999999999 (once a runaway loop)', args: () => cacheArgs('--blocks', '0-999999999'), want: /--blocks: 999999999 is far beyond/ },
  { name: '--positions bogus', args: () => cacheArgs('--positions', 'bogus'), want: /bogus/ },
  { name: '--split bogus', args: () => cacheArgs('--split', 'bogus'), want: /--split: 'bogus' is not valid\. Should be one of: train, heldout/ },
  { name: '--hooks that name nothing', args: () => cacheArgs('--hooks', 'blocks.9.hook_nope'), want: /blocks\.9\.hook_nope/ },
  { name: '--task that is not a preset or file', args: () => cacheArgs('--task', 'no-such-task'), want: /no-such-task/ },
  { name: '--task of another vocabulary', args: () => cacheArgs('--task', OTHER_TASK), want: /--task: the task's prompts use a vocabulary of 18 token ids, but .* was trained on 10/ },
  { name: '--task of vectors for a token model', args: () => cacheArgs('--task', VECTOR_TASK), want: /--task: the task's prompts are vectors/ },
  { name: 'a text file named .onnx', args: () => ['cache', TEXT_ONNX, '--out', at('cases', 'c.arrow')], want: /text\.onnx is not an ONNX model/ },
  { name: 'a missing model', args: () => ['cache', at('gone.onnx'), '--out', at('cases', 'c.arrow')], want: /gone\.onnx/ },
]);
add('cache-info', [
  { name: 'no cache', args: () => ['cache-info'], want: /expected one cache file, got 0/ },
  { name: 'a missing cache', args: () => ['cache-info', at('gone.arrow')], want: /gone\.arrow/ },
  { name: 'a text file', args: () => ['cache-info', NOT_ARROW], want: /not\.arrow/ },
  { name: 'an empty file', args: () => ['cache-info', EMPTY], want: /empty\.json/ },
  { name: 'a folder', args: () => ['cache-info', USER_DIR], want: /user/ },
  {
    name: 'a truncated cache',
    setup: () => write('cases/trunc.arrow', fs.readFileSync(CACHE).subarray(0, 300)),
    args: () => ['cache-info', at('cases', 'trunc.arrow')],
    want: /trunc\.arrow/,
  },
  { name: '--model another model', args: () => ['cache-info', CACHE, '--model', OTHER_WEIGHTS], want: /step-000001\.onnx: its weights hash [0-9a-f]+… does not match the manifest's/ },
]);

// ── tv-search, patch, locality ────────────────────────────────────────────────────────────────
const tv = (...extra: string[]) => ['tv-search', CK, '--prompts', '2', '--queries', '4', ...extra];
add('tv-search', [
  { name: 'no model', args: () => ['tv-search'], want: /expected one model, got 0/ },
  { name: 'two models', args: () => ['tv-search', CK, CK], want: /expected one model, got 2/ },
  { name: 'a missing model', args: () => ['tv-search', at('gone.onnx')], want: /gone\.onnx/ },
  { name: 'a .txt file', args: () => ['tv-search', USER_FILE], want: /notes\.txt is not a checkpoint/ },
  { name: 'an .onnx without a manifest', args: () => ['tv-search', NO_MANIFEST], want: /not a tvlens checkpoint \(no manifest beside it\)/ },
  { name: 'a corrupt manifest (once an internal error)', args: () => ['tv-search', CORRUPT_MANIFEST], want: /step-000001\.json is not valid JSON/ },
  { name: 'an empty manifest', args: () => ['tv-search', EMPTY_MANIFEST], want: /step-000001\.json is empty/ },
  { name: 'a JSON of another format beside the model', args: () => ['tv-search', FOREIGN_MANIFEST], want: /m-foreign\/step-000001\.json is not a tvlens checkpoint manifest/ },
  { name: 'a manifest missing its fields', args: () => ['tv-search', PARTIAL_MANIFEST], want: /damaged checkpoint manifest/ },
  { name: 'a manifest naming a missing model', args: () => ['tv-search', MISSING_ONNX], want: /gone\.onnx, which does not exist/ },
  { name: 'weights that do not match the manifest', args: () => ['tv-search', HASH_MISMATCH], want: /weights hash .* does not match the manifest/ },
  { name: "--layers '' (once searched everything)", args: () => tv('--layers='), want: /--layers: is empty/ },
  { name: '--layers 9 (beyond the model)', args: () => tv('--layers', '9'), want: /layer 9 is out of range/ },
  { name: '--layers 3-1', args: () => tv('--layers', '3-1'), want: /empty range/ },
  { name: '--shots 99 (once 10× the context, silently)', args: () => tv('--shots', '99'), want: /--shots: prompts with 99 demos are \d+ positions long, more than the model's context of 24/ },
  { name: '--shots 1e9 (once a hang)', args: () => tv('--shots', '1e9'), want: /--shots: prompts with 1000000000 demos .* the most that fit is 5/ },
  { name: '--shots -1', args: () => tv('--shots=-1'), want: /--shots: expected an integer/ },
  { name: '--position 1', args: () => tv('--position', '1'), want: /--position: expected an integer ≤ 0/ },
  { name: '--position abc', args: () => tv('--position', 'abc'), want: /--position: expected a number/ },
  { name: '--seed 1.5', args: () => tv('--seed', '1.5'), want: /--seed: expected an integer/ },
  { name: '--seed beyond 2^53', args: () => tv('--seed', '9007199254740993'), want: /--seed: expected an integer/ },
  { name: '--prompts 0', args: () => tv('--prompts', '0'), want: /--prompts: expected an integer ≥ 1/ },
  { name: '--prompts 10000000 (once grew past 4 GB)', args: () => tv('--prompts', '10000000'), want: /prompts of \d+ positions needs about .*GiB.*lower --prompts/ },
  { name: 'prompts over --max-memory', args: () => tv('--max-memory', '1M'), want: /needs about [\d.]+ MiB .*more than 1 MiB \(--max-memory\)/ },
  { name: '--queries 1', args: () => tv('--queries', '1'), want: /--queries: expected an integer ≥ 2/ },
  { name: '--dummies 0', args: () => tv('--dummies', '0'), want: /--dummies: expected an integer ≥ 1/ },
  { name: '--tasks 0', args: () => tv('--tasks', '0'), want: /--tasks: expected an integer ≥ 1/ },
  { name: '--mode bogus', args: () => tv('--mode', 'bogus'), want: /--mode/ },
  { name: '--split bogus', args: () => tv('--split', 'bogus'), want: /--split/ },
  { name: "--sets ''", args: () => tv('--sets='), want: /--sets: '' is not a layer set/ },
  { name: '--sets a+b', args: () => tv('--sets', 'a+b'), want: /--sets: 'a\+b' is not a layer set/ },
  { name: '--combine x', args: () => tv('--combine', 'x'), want: /--combine: expected a number/ },
  { name: '--combine 0', args: () => tv('--combine', '0'), want: /--combine: expected an integer ≥ 1/ },
  { name: '--threads 0', args: () => tv('--threads', '0'), want: /--threads: expected an integer 1\.\.1024/ },
  { name: '--pad-to without --hook-map', args: () => tv('--pad-to', '32'), want: /--pad-to: applies to a foreign model/ },
  { name: '--task of another vocabulary (once raw ORT errors)', args: () => tv('--task', OTHER_TASK), want: /--task: the task's prompts use a vocabulary of 18/ },
  { name: '--task that does not exist', args: () => tv('--task', 'no-such-task'), want: /no-such-task/ },
  { name: '--task that is not JSON', args: () => tv('--task', BAD_JSON), want: /bad\.json is not valid JSON/ },
  { name: '--task that is a folder', args: () => tv('--task', USER_DIR), want: /--task: .*user is a folder, not a task config/ },
  { name: '--out a folder', args: () => tv('--out', USER_DIR), want: /--out .*user is a folder/ },
  { name: "--out the user's own file", args: () => tv('--out', USER_FILE), want: /notes\.txt exists and is not a file tvlens wrote/ },
  { name: '--out under a file', args: () => tv('--out', path.join(A_FILE, 'r.json')), want: /afile\/[\w.]+: a part of the path is a file, not a folder/ },
  { name: '--hook-map on a tvlens checkpoint', args: () => tv('--hook-map', HOOKMAP_ARRAY), want: /is a tvlens checkpoint.*drop the hook map/ },
]);
const pa = (...extra: string[]) => ['patch', CK, '--prompts', '2', '--tasks', '2', ...extra];
add('patch', [
  { name: 'no model', args: () => ['patch'], want: /expected one model, got 0/ },
  { name: '--site bogus', args: () => pa('--site', 'bogus'), want: /--site/ },
  { name: '--direction bogus', args: () => pa('--direction', 'bogus'), want: /--direction/ },
  { name: '--corruption bogus', args: () => pa('--corruption', 'bogus'), want: /--corruption/ },
  { name: '--show bogus', args: () => pa('--show', 'bogus'), want: /--show/ },
  { name: "--positions ''", args: () => pa('--positions='), want: /--positions: is empty/ },
  { name: '--positions 5-2', args: () => pa('--positions', '5-2'), want: /--positions: '5-2' is an empty range/ },
  { name: "--blocks ''", args: () => pa('--blocks='), want: /--blocks: is empty/ },
  { name: '--prompts 0', args: () => pa('--prompts', '0'), want: /--prompts: expected an integer ≥ 1/ },
  { name: '--tasks x', args: () => pa('--tasks', 'x'), want: /--tasks: expected a number/ },
  { name: '--shots 99', args: () => pa('--shots', '99'), want: /--shots: prompts with 99 demos/ },
  { name: '--seed -3', args: () => pa('--seed=-3'), want: /--seed: expected an integer 0\.\./ },
  { name: '--out a folder', args: () => pa('--out', USER_DIR), want: /is a folder/ },
  { name: 'a corrupt manifest', args: () => ['patch', CORRUPT_MANIFEST], want: /is not valid JSON/ },
]);
const lo = (...extra: string[]) => ['locality', CK, '--prompts', '2', '--queries', '4', ...extra];
add('locality', [
  { name: 'no model', args: () => ['locality'], want: /name a checkpoint or a run folder/ },
  { name: '--combine abc', args: () => lo('--combine', 'abc'), want: /--combine: expected a number/ },
  { name: "--combine ''", args: () => lo('--combine='), want: /--combine: expected a comma-separated list/ },
  { name: '--permutations 0', args: () => lo('--permutations', '0'), want: /--permutations: expected an integer ≥ 1/ },
  { name: '--shots 99', args: () => lo('--shots', '99'), want: /--shots: prompts with 99 demos/ },
  { name: "--layers ''", args: () => lo('--layers='), want: /--layers: is empty/ },
  { name: '--out a folder', args: () => lo('--out', USER_DIR), want: /is a folder/ },
  { name: "--out the user's own file", args: () => lo('--out', USER_FILE), want: /exists and is not a file tvlens wrote/ },
  { name: '--hook-map on a series', args: () => ['locality', RUN, '--hook-map', HOOKMAP_ARRAY], want: /--hook-map applies to one foreign model/ },
  { name: 'a corrupt manifest', args: () => lo().map((a) => (a === CK ? CORRUPT_MANIFEST : a)), want: /is not valid JSON/ },
  {
    name: 'a run folder with a corrupt manifest (once an internal error)',
    setup: () => fs.writeFileSync(path.join(copyRun(RUN, 'loc-badman'), 'checkpoints', 'step-000003.json'), '{'),
    args: () => ['locality', at('cases', 'loc-badman'), '--prompts', '2'],
    want: /step-000003\.json is not valid JSON/,
  },
  { name: 'a folder that is not a run', args: () => ['locality', USER_DIR, '--prompts', '2'], want: /user holds no checkpoints/ },
]);

// ── report, demo ──────────────────────────────────────────────────────────────────────────────
add('report', [
  { name: 'no inputs', args: () => ['report', '--out', at('r.html')], want: /give at least one run folder/ },
  { name: 'no --out', args: () => ['report', RUN], want: /--out: is required/ },
  { name: '--out not .html', args: () => ['report', RUN, '--out', at('r.txt')], want: /--out: expected a \.html file/ },
  { name: '--out a folder', args: () => ['report', RUN, '--out', `${USER_DIR}.html`], setup: () => fs.mkdirSync(`${USER_DIR}.html`, { recursive: true }), want: /is a folder/ },
  { name: "--out the user's own page", args: () => ['report', RUN, '--out', USER_HTML], want: /page\.html exists and is not a file tvlens wrote/ },
  { name: '--prompts 0', args: () => ['report', RUN, '--out', at('r.html'), '--prompts', '0'], want: /--prompts: expected an integer ≥ 1/ },
  { name: '--seed 1.5', args: () => ['report', RUN, '--out', at('r.html'), '--seed', '1.5'], want: /--seed: expected an integer/ },
  { name: '--shots -2', args: () => ['report', RUN, '--out', at('r.html'), '--shots=-2'], want: /--shots: expected an integer ≥ 0/ },
  { name: '--shots 99 on a run (beyond the context)', args: () => ['report', RUN, '--out', at('r.html'), '--shots', '99'], want: /--shots: prompts with 99 demos are \d+ positions long, more than the model's context of 32/ },
  { name: '--shots 99 on a checkpoint', args: () => ['report', CK, '--out', at('r.html'), '--shots', '99'], want: /--shots: prompts with 99 demos .* context of 24/ },
]);
add('demo', [
  { name: "--out a user's folder (once deleted it)", args: () => ['demo', '--out', USER_DIR], want: /holds files that are not a tvlens run \(thesis\.tex\)/ },
  { name: "--out a user's folder with --fresh", args: () => ['demo', '--out', USER_DIR, '--fresh'], want: /holds files that are not a tvlens run/ },
  { name: '--out a real run of another config (once deleted it)', args: () => ['demo', '--out', RUN, '--fresh'], want: /holds another run \(not the tiny preset's\)/ },
  { name: '--out a file', args: () => ['demo', '--out', A_FILE], want: /afile/ },
  { name: "--report the user's own page", args: () => ['demo', '--out', at('cases', 'demo'), '--report', USER_HTML], want: /--report .*page\.html exists and is not a file tvlens wrote/ },
]);

const fv = (...extra: string[]) => ['fv', CK, '--prompts', '2', '--tasks', '2', ...extra];
add('fv', [
  { name: 'no model', args: () => ['fv'], want: /expected one model, got 0\. Usage: tvlens fv/ },
  { name: "--layers ''", args: () => fv('--layers='), want: /--layers: is empty/ },
  { name: '--top-k 0', args: () => fv('--top-k', '0'), want: /--top-k: expected an integer ≥ 1/ },
  { name: '--shots 1', args: () => fv('--shots', '1'), want: /--shots: expected an integer ≥ 2/ },
  { name: '--shots 99', args: () => fv('--shots', '99'), want: /--shots: prompts with 99 demos/ },
  { name: '--seed 1.5', args: () => fv('--seed', '1.5'), want: /--seed: expected an integer/ },
  { name: '--out a folder', args: () => fv('--out', USER_DIR), want: /is a folder/ },
  { name: 'a corrupt manifest', args: () => ['fv', CORRUPT_MANIFEST], want: /is not valid JSON/ },
]);
const SPEC = write('studies/spec.json', JSON.stringify({ name: 'x', grid: [{ group: 'g', preset: 'tiny', seeds: [0], runs: ['baseline'] }] }));
add('study', [
  { name: 'no spec', args: () => ['study', '--out', at('cases', 'study')], want: /spec: expected one study spec file, got 0/ },
  { name: 'a missing spec', args: () => ['study', at('gone.json'), '--out', at('cases', 'study')], want: /gone\.json/ },
  { name: 'a spec that is not JSON', args: () => ['study', BAD_JSON, '--out', at('cases', 'study')], want: /bad\.json/ },
  { name: 'an empty spec', args: () => ['study', EMPTY, '--out', at('cases', 'study')], want: /empty\.json/ },
  { name: 'a spec that is a folder', args: () => ['study', USER_DIR, '--out', at('cases', 'study')], want: /user/ },
  { name: 'no --out', args: () => ['study', SPEC], want: /--out/ },
  ...['0/2', '3/2', 'x', '1/0', '1.5/2'].map((v) => ({ name: `--shard ${v}`, args: () => ['study', SPEC, '--out', at('cases', 'study'), '--shard', v], want: new RegExp(`--shard: expected i/n with 1 ≤ i ≤ n \\(e\\.g\\. 1/4\\), got '${v.replace('.', '\\.')}'`) })),
  { name: '--shard with --aggregate', args: () => ['study', SPEC, '--out', at('cases', 'study'), '--shard', '1/2', '--aggregate'], want: /--aggregate/ },
  { name: "--out a user's folder", args: () => ['study', SPEC, '--out', USER_DIR], want: /user/ },
]);

const all = Object.entries(cases).flatMap(([group, list]) => list.map((c) => ({ ...c, title: `${group}: ${c.name}` })));

describe('bad input: every command refuses with one line, exit 1, and touches nothing', () => {
  it(`has at least 150 cases (${all.length})`, () => {
    expect(all.length).toBeGreaterThanOrEqual(150);
  });
  it.each(all)('$title', async (c) => {
    c.setup?.();
    const before = snapshot(root);
    const r = await cli(c.args());
    expectRefusal(r, c.want, before, c.code);
    expect(leftovers(root, before)).toEqual([]);
  }, 60_000);
});
