/**
 * A study on a real Slurm: a single-node cluster on this machine (Debian's slurm-wlm and munge,
 * started here as root with a slurm.conf for localhost: proctrack/linuxproc, task/none,
 * select/cons_tres), its own ports, state and spool in a temporary folder. The 4-job tiny study
 * runs as a 2-task array from `tvlens study --emit slurm`; one task is cancelled mid-run, which
 * cancels the aggregate waiting on it; that task is resubmitted alone (`submit.sh --array=1`),
 * and its aggregate then gathers results equal to a single-process run of the same study.
 * Where Slurm cannot start (not root, not installed, no munge), the file skips with one line.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from '../src/cli/command.js';
import { studyCommand } from '../src/cli/study.js';
import { readResultsTable } from '../src/study/results.js';
import { shellQuote } from '../src/study/emit-slurm.js';

const ROOT = path.resolve(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-slurm-'));
const started: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every job shard runs 40 tiny steps with a checkpoint every 10, so a cancel lands mid-job. */
const spec = {
  name: 'tiny-slurm',
  grid: [
    {
      group: 'g',
      preset: 'tiny',
      set: { 'train.steps': 40, 'train.evalEvery': 20, 'train.checkpointEvery': 10, 'train.evalPrompts': 32 },
      seeds: [0, 1],
      runs: ['baseline', 'tvp-finetune'],
      tvp: { lambda: [1] },
    },
  ],
  analysis: { prompts: 4, queries: 8, evalPrompts: 32, permutations: 10, variants: false },
};
const specFile = path.join(dir, 'spec.json');
fs.writeFileSync(specFile, JSON.stringify(spec));

const conf = path.join(dir, 'slurm.conf');
const env = { ...process.env, SLURM_CONF: conf, TVLENS_THREADS: '1' };

function slurmConf(): string {
  const port = 17000 + 2 * (process.pid % 1000); // another test run's cluster on this host keeps its own ports
  const memMiB = Math.floor(os.totalmem() / 2 ** 20) - 1024;
  for (const d of ['state', 'spool']) fs.mkdirSync(path.join(dir, d));
  return [
    'ClusterName=tvlens-test',
    'SlurmctldHost=localhost',
    `SlurmctldPort=${port}`,
    `SlurmdPort=${port + 1}`,
    'SlurmUser=root',
    'AuthType=auth/munge',
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_CPU_Memory',
    `StateSaveLocation=${path.join(dir, 'state')}`,
    `SlurmdSpoolDir=${path.join(dir, 'spool')}`,
    `SlurmctldPidFile=${path.join(dir, 'slurmctld.pid')}`,
    `SlurmdPidFile=${path.join(dir, 'slurmd.pid')}`,
    `SlurmctldLogFile=${path.join(dir, 'slurmctld.log')}`,
    `SlurmdLogFile=${path.join(dir, 'slurmd.log')}`,
    'AccountingStorageType=accounting_storage/none',
    'JobCompType=jobcomp/none',
    'ReturnToService=2',
    'MpiDefault=none',
    'KillWait=5',
    `NodeName=tvnode NodeAddr=127.0.0.1 NodeHostname=${os.hostname()} CPUs=${os.cpus().length} RealMemory=${memMiB} State=UNKNOWN`,
    'PartitionName=tv Nodes=tvnode Default=YES MaxTime=INFINITE State=UP',
    '',
  ].join('\n');
}

const munging = () => spawnSync('sh', ['-c', 'munge -n | unmunge'], { stdio: 'ignore' }).status === 0;

/** Starts munged (if none answers), slurmctld and slurmd; returns why not, or null once the node is idle. */
async function startSlurm(): Promise<string | null> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'needs Linux and root';
  for (const bin of ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch']) if (!fs.existsSync(bin)) return `${bin} is not installed (apt-get install slurm-wlm munge)`;
  if (!munging()) {
    if (!fs.existsSync('/etc/munge/munge.key')) return 'no /etc/munge/munge.key';
    fs.mkdirSync('/run/munge', { recursive: true });
    spawnSync('chown', ['munge:munge', '/run/munge']);
    // munged is the host's authentication daemon, shared by every Slurm test run on this host
    // (another may start while this one ends): it is left running, as a system service would be.
    spawn('runuser', ['-u', 'munge', '--', '/usr/sbin/munged'], { stdio: 'ignore', detached: true }).unref();
    for (let i = 0; i < 50 && !munging(); i++) await sleep(100);
    if (!munging()) return 'munged did not start';
  }
  fs.writeFileSync(conf, slurmConf());
  started.push(spawn('/usr/sbin/slurmctld', ['-D', '-i'], { env, stdio: 'ignore' }));
  await sleep(500);
  started.push(spawn('/usr/sbin/slurmd', ['-D', '-N', 'tvnode'], { env, stdio: 'ignore' }));
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('sinfo', ['-h', '-o', '%t'], { env, encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() === 'idle') return null;
    await sleep(200);
  }
  const log = fs.existsSync(path.join(dir, 'slurmctld.log')) ? fs.readFileSync(path.join(dir, 'slurmctld.log'), 'utf8').trim().split('\n').pop() : '';
  return `the node did not become idle within 20 s (${log})`;
}

const whyNot = await startSlurm();
/** The single-process run of the same study, started by the first Slurm test. */
let single: ReturnType<typeof tvlens> | null = null;
if (whyNot) console.warn(`slurm test skipped: Slurm cannot start here: ${whyNot}`);

afterAll(async () => {
  await single;
  if (!whyNot) spawnSync('scancel', ['--full', '-u', 'root', '-M', 'tvlens-test'], { env, stdio: 'ignore' });
  spawnSync('scancel', ['-u', 'root'], { env, stdio: 'ignore' });
  await sleep(500);
  for (const p of started.reverse()) if (p.exitCode === null) p.kill('SIGTERM');
  await sleep(500);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI in its own process (from the sources, through tsx, as the emitted scripts will). */
function tvlens(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Slurm's state of a job, or '' once it has left the queue. */
const jobState = (id: string) => spawnSync('squeue', ['-h', '-j', id, '-o', '%T'], { env, encoding: 'utf8' }).stdout.trim();
/** The state squeue or scontrol still knows for a finished job ('' when it is gone altogether). */
const finalState = (id: string) => /JobState=(\w+)/.exec(spawnSync('scontrol', ['show', 'job', id], { env, encoding: 'utf8' }).stdout)?.[1] ?? '';

async function waitUntil(what: string, cond: () => boolean, seconds = 240): Promise<void> {
  for (const t0 = Date.now(); !cond(); await sleep(200)) if (Date.now() - t0 > seconds * 1000) throw new Error(`timed out waiting for ${what}`);
}

function submit(args: string[] = []): { array: string; aggregate: string } {
  const out = execFileSync('bash', [path.join(dir, 'study', 'slurm', 'submit.sh'), ...args], { env, encoding: 'utf8' });
  const m = /array job (\d+), aggregate job (\d+)/.exec(out);
  expect(m, out).not.toBeNull();
  return { array: m![1], aggregate: m![2] };
}

describe('tvlens study --emit', () => {
  const fresh = path.join(dir, 'never-made');
  it.each([
    [['--emit', 'pbs'], /--emit: 'pbs' is not valid. Should be one of: slurm/],
    [['--emit', 'slurm', '--tasks', '0'], /--tasks: expected an integer ≥ 1, got '0'/],
    [['--emit', 'slurm', '--tasks', '3'], /--tasks: the study has 2 \(cell, seed\) units/],
    [['--emit', 'slurm', '--cpus-per-task', '1.5'], /--cpus-per-task: expected an integer ≥ 1/],
    [['--tasks', '2'], /--tasks: only applies with --emit slurm/],
    [['--emit', 'slurm', '--shard', '1/2'], /--emit: writes the scripts that run every shard/],
  ])('refuses %j in one line, writing nothing', async (extra, message) => {
    const attempt = async () => {
      const { values, positionals } = parse(studyCommand, [specFile, '--out', fresh, ...(extra as string[])]);
      await studyCommand.run(values, positionals);
    };
    await expect(attempt()).rejects.toThrow(message);
    expect(fs.existsSync(fresh)).toBe(false);
  });

  it('quotes paths for the shell so that nothing in them expands', () => {
    expect(shellQuote('/data/runs/s-1')).toBe('/data/runs/s-1');
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
    const nasty = "a b'$(echo x)";
    expect(execFileSync('sh', ['-c', `printf %s ${shellQuote(nasty)}`], { encoding: 'utf8' })).toBe(nasty);
  });
});

describe.skipIf(whyNot !== null)('a study on Slurm', () => {
  const out = path.join(dir, 'study');
  it('emits an array of 2 shards and an aggregate with tvlens\'s memory estimate', async () => {
    single = tvlens(['study', specFile, '--out', path.join(dir, 'single'), '--json']); // the reference, run meanwhile
    const r = await tvlens(['study', specFile, '--out', out, '--emit', 'slurm', '--tasks', '2', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const emitted = JSON.parse(r.stdout) as { tasks: number; cpusPerTask: number; memoryBytes: number };
    expect(emitted).toMatchObject({ tasks: 2, cpusPerTask: 1 });
    const array = fs.readFileSync(path.join(out, 'slurm', 'array.sbatch'), 'utf8');
    expect(array).toContain('#SBATCH --array=0-1');
    expect(array).toContain(`#SBATCH --mem=${Math.ceil(emitted.memoryBytes / 2 ** 20)}M`);
    expect(array).toMatch(/--shard "\$\(\(SLURM_ARRAY_TASK_ID \+ 1\)\)\/2"/);
    expect(fs.readFileSync(path.join(out, 'slurm', 'aggregate.sbatch'), 'utf8')).toMatch(/--aggregate/);
  }, 120000);

  it('loses nothing when a task is cancelled mid-run and resubmitted alone, and aggregates what one process gets', async () => {
    const first = submit();
    // Task 1 runs unit 1 (seed 1): cancel it once its baseline has written a checkpoint.
    const ckpts = path.join(out, 'jobs', 'g_baseline_s1', 'run', 'checkpoints');
    await waitUntil('a checkpoint of task 1', () => fs.existsSync(ckpts) && fs.readdirSync(ckpts).some((f) => f.endsWith('.state')));
    execFileSync('scancel', [`${first.array}_1`], { env });
    await waitUntil('task 0 and the aggregate to leave the queue', () => jobState(`${first.array}_0`) === '' && jobState(first.aggregate) === '');
    expect(finalState(`${first.array}_0`)).toBe('COMPLETED');
    expect(finalState(`${first.array}_1`)).toBe('CANCELLED');
    expect(fs.existsSync(path.join(out, 'jobs', 'g_tvp-finetune-l1_s1', 'result.json')), 'the cancel landed mid-run').toBe(false);
    expect(fs.existsSync(path.join(out, 'results.arrow')), 'the aggregate never ran').toBe(false);

    const retry = submit(['--array=1']);
    await waitUntil('the retry and its aggregate', () => jobState(retry.aggregate) === '' && jobState(`${retry.array}_1`) === '');
    expect(finalState(retry.aggregate)).toBe('COMPLETED');
    const log = fs.readdirSync(path.join(out, 'slurm', 'logs')).filter((f) => f.startsWith(`shard-${retry.array}_1`));
    expect(log).toHaveLength(1);
    expect(fs.readFileSync(path.join(out, 'slurm', 'logs', log[0]), 'utf8')).toMatch(/g_baseline_s1/);

    const reference = await single!;
    expect(reference.code, reference.stderr).toBe(0);
    const rows = readResultsTable(path.join(out, 'results.arrow'));
    expect(rows.map((r) => r.id)).toEqual(['g_baseline_s0', 'g_tvp-finetune-l1_s0', 'g_baseline_s1', 'g_tvp-finetune-l1_s1']);
    expect(rows).toEqual(readResultsTable(path.join(dir, 'single', 'results.arrow')));
  }, 300000);
});
