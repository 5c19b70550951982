/**
 * The bad-input suite for the analysis surface: --prompts-file (pipes, devices, huge files, long
 * lines, a pair whose wrong token is its answer), attribution patching's and fv's flags, cache
 * outputs, training configs that used to hang or write before refusing, and the library (run,
 * patches, locality, tvSearch, cacheToArrow) given what a script might pass. CLI refusals are
 * checked as in the other suites: exit 1, one line, nothing in the sandbox changed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { TvlensError } from '../src/errors.js';
import { openModel } from '../src/index.js';
import { handModel, handTaskConfig } from './support/tv-hand-model.js';
import { sampleTrainBatch } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';
import { runCli } from './support/cli.js';
import { type CaseClass, sandbox } from './support/refusal.js';

const box = sandbox('tvlens-bad-analysis-');
const { at, write } = box;
afterAll(() => box.remove());

const { cfg: handCfg, params: handParams } = handModel();
writeCheckpoint(at('hand', 'step-000050'), handCfg, handParams, { step: 50, seed: 0, task: handTaskConfig(), metrics: {} });
const CK = at('hand', 'step-000050.onnx');
const T = handCfg.maxSeq; // 24
const tokens = (n: number, f = (i: number) => i % 8) => Array.from({ length: n }, (_, i) => f(i));
const pair = (extra: Record<string, unknown> = {}) => JSON.stringify({ tokens: tokens(9), corrupted: tokens(9, (i) => (i + 1) % 8), answer: 3, ...extra });

const FIFO = at('inputs', 'pipe.jsonl');
fs.mkdirSync(at('inputs'));
execFileSync('mkfifo', [FIFO]);
const HUGE = at('inputs', 'huge.jsonl');
fs.closeSync(fs.openSync(HUGE, 'w'));
fs.truncateSync(HUGE, 300 * 2 ** 20); // sparse: 300 MiB of NULs, no disk used
const LONG_LINE = write('inputs/long-line.jsonl', `{"tokens": [${'1,'.repeat(700_000)}1]}\n`);
const EMPTY = write('inputs/empty.jsonl', '');
const BLANK = write('inputs/blank.jsonl', '\n\n   \n');
const NOT_JSON = write('inputs/not-json.jsonl', `${pair()}\n{tokens: [1, 2]}\n`);
const WRONG_IS_ANSWER = write('inputs/wrong-is-answer.jsonl', `${pair({ wrong: 3 })}\n`);
const PAIRS = write('inputs/pairs.jsonl', `${pair()}\n${pair({ answer: 5 })}\n`);
const BOM_PAIRS = write('inputs/bom.jsonl', `\uFEFF${pair()}\n${pair({ answer: 5 })}\n`);
const USER_TXT = write('notes.txt', 'my notes');
fs.symlinkSync(at('nowhere.arrow'), at('dangling.arrow'));
fs.mkdirSync(at('outdir'));
fs.copyFileSync(CK, at('bare-fv.onnx'));
const micro = (train: Record<string, unknown> = {}, model: Record<string, unknown> = {}, task: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: { layers: 1, dModel: 16, heads: 2, maxSeq: 32, ...model },
    task: { vocab: 8, demos: { min: 2, max: 4 }, heldoutTasks: 2, ...task },
    train: { steps: 6, batchSize: 8, evalEvery: 3, evalPrompts: 16, checkpointEvery: 3, ...train },
  });
const FIRST_CKPT_50 = write('configs/ckpt50.json', micro({ steps: 60, checkpointEvery: 50 }));
const TASKS_999 = write('configs/tasks999.json', micro({}, {}, { trainTasks: 999 }));
const EVAL_1E8 = write('configs/eval1e8.json', micro({ evalPrompts: 1e8 }));
const PERMS_1E9 = write('configs/perms1e9.json', micro({}, {}, { discrete: { families: ['permutation'], permutations: 1e9 } }));
const BIG_403M = write('configs/big.json', micro({}, { layers: 2, dModel: 4096, heads: 8 }));
const STUDY_1E9 = write('studies/prompts1e9.json', JSON.stringify({ name: 's', grid: [{ group: 'g', preset: 'tiny', seeds: [0] }], analysis: { prompts: 1e9 } }));

interface Case {
  readonly name: string;
  readonly command: string;
  readonly cls: CaseClass;
  readonly args: string[];
  readonly want: RegExp;
}

const tv = (...a: string[]) => ['tv-search', CK, ...a];
const cases: Case[] = [
  // --prompts-file: a regular file, streamed, bounded.
  { command: 'prompts-file', cls: 'hang', name: 'a FIFO with no writer', args: tv('--prompts-file', FIFO), want: /pipe\.jsonl is not a regular file/ },
  { command: 'prompts-file', cls: 'hang', name: '/dev/zero', args: tv('--prompts-file', '/dev/zero'), want: /\/dev\/zero is not a regular file/ },
  { command: 'prompts-file', cls: 'hang', name: 'a 300 MiB file', args: tv('--prompts-file', HUGE), want: /huge\.jsonl is 300 MiB, more than the 256 MiB/ },
  { command: 'prompts-file', cls: 'hang', name: 'a 1.4 MB line', args: tv('--prompts-file', LONG_LINE), want: /long-line\.jsonl:1: a line longer than 1 MiB/ },
  { command: 'prompts-file', cls: 'refusal', name: 'an empty file', args: tv('--prompts-file', EMPTY), want: /empty\.jsonl holds no prompts/ },
  { command: 'prompts-file', cls: 'refusal', name: 'only blank lines', args: tv('--prompts-file', BLANK), want: /blank\.jsonl holds no prompts/ },
  { command: 'prompts-file', cls: 'refusal', name: 'a line that is not JSON', args: tv('--prompts-file', NOT_JSON), want: /not-json\.jsonl:2: not valid JSON/ },
  { command: 'prompts-file', cls: 'refusal', name: 'a folder', args: tv('--prompts-file', at('inputs')), want: /inputs is a folder/ },
  { command: 'prompts-file', cls: 'silent', name: "a pair whose 'wrong' is its 'answer'", args: ['patch', CK, '--prompts-file', WRONG_IS_ANSWER], want: /wrong-is-answer\.jsonl:1: 'wrong' is the same token as 'answer' \(3\)/ },
  { command: 'cache', cls: 'silent', name: '--prompts-file with --prompts', args: ['cache', CK, '--prompts-file', PAIRS, '--prompts', '5', '--out', at('c.arrow')], want: /--prompts: draws prompts from a task; with --prompts-file the file's prompts are used/ },
  { command: 'cache', cls: 'silent', name: '--prompts-file with --demos', args: ['cache', CK, '--prompts-file', PAIRS, '--demos', '2', '--out', at('c.arrow')], want: /--demos: draws prompts from a task/ },
  { command: 'prompts-file', cls: 'silent', name: 'tv-search --prompts-file with --prompts', args: tv('--prompts-file', PAIRS, '--prompts', '5'), want: /--prompts: draws prompts from a task; with --prompts-file the file's prompts are used/ },
  { command: 'prompts-file', cls: 'silent', name: 'tv-search --prompts-file with --queries', args: tv('--prompts-file', PAIRS, '--queries', '8'), want: /--queries: draws prompts from a task/ },
  { command: 'prompts-file', cls: 'silent', name: 'patch --prompts-file with --shots', args: ['patch', CK, '--prompts-file', PAIRS, '--shots', '2'], want: /--shots: draws prompts from a task/ },
  { command: 'cache', cls: 'silent', name: '--out dir/ (once a file named dir)', args: ['cache', CK, '--out', `${at('newdir')}/`, '--prompts', '2'], want: /--out .*newdir\/ ends with '\/', a folder/ },
  { command: 'cache', cls: 'overwrite', name: '--out a dangling symlink', args: ['cache', CK, '--out', at('dangling.arrow'), '--prompts', '2'], want: /dangling\.arrow is a symbolic link to nothing/ },
  { command: 'cache', cls: 'overwrite', name: '--out an existing folder', args: ['cache', CK, '--out', at('outdir'), '--prompts', '2'], want: /outdir is a folder/ },
  // Attribution patching: every flag honoured or refused.
  { command: 'attribution', cls: 'silent', name: '--blocks', args: ['patch', CK, '--method', 'attribution', '--blocks', '0'], want: /--blocks: applies to --method exact/ },
  { command: 'attribution', cls: 'silent', name: '--positions', args: ['patch', CK, '--method', 'attribution', '--positions', '1'], want: /--positions: applies to --method exact/ },
  { command: 'attribution', cls: 'silent', name: '--show', args: ['patch', CK, '--method', 'attribution', '--show', 'logitDiff'], want: /--show: applies to --method exact/ },
  { command: 'attribution', cls: 'silent', name: '--save-prompts', args: ['patch', CK, '--method', 'attribution', '--save-prompts', at('p.jsonl')], want: /--save-prompts: applies to --method exact/ },
  { command: 'attribution', cls: 'silent', name: '--top-k beyond the cells', args: ['patch', CK, '--method', 'attribution', '--top-k', '1000000', '--tasks', '2', '--prompts', '2'], want: /top-k 1000000 is not below the \d+ cells of site \w+: every overlap would be 1/ },
  { command: 'patch', cls: 'silent', name: '--skip-exact with --method exact', args: ['patch', CK, '--skip-exact'], want: /--skip-exact: applies to --method attribution/ },
  { command: 'patch', cls: 'silent', name: '--top-k with --method exact', args: ['patch', CK, '--top-k', '5'], want: /--top-k: applies to --method attribution/ },
  { command: 'patch', cls: 'message', name: '--blocks 9 on a resid_pre patch (once blamed attn.hook_z)', args: ['patch', CK, '--blocks', '9', '--tasks', '2', '--prompts', '2'], want: /block 9 is out of range: this model has 3 blocks, 0\.\.2 \(each row of a resid_pre patch is one block\)/ },
  // fv: every flag checked against the model before any work.
  { command: 'fv', cls: 'silent', name: '--top-k beyond the heads', args: ['fv', CK, '--top-k', '99', '--tasks', '2', '--prompts', '2'], want: /top-k must be an integer in 1\.\.3 \(this model's heads\), got 99/ },
  { command: 'fv', cls: 'refusal', name: '--layers beyond the model', args: ['fv', CK, '--layers', '9', '--tasks', '2', '--prompts', '2'], want: /layer 9 is out of range/ },
  { command: 'fv', cls: 'refusal', name: '--prompts 0', args: ['fv', CK, '--prompts', '0'], want: /--prompts/ },
  { command: 'fv', cls: 'refusal', name: '--shuffled 0', args: ['fv', CK, '--shuffled', '0'], want: /--shuffled/ },
  { command: 'fv', cls: 'refusal', name: '--queries 1', args: ['fv', CK, '--queries', '1'], want: /--queries/ },
  { command: 'fv', cls: 'refusal', name: '--split other', args: ['fv', CK, '--split', 'other'], want: /--split/ },
  { command: 'fv', cls: 'refusal', name: '--tasks 0', args: ['fv', CK, '--tasks', '0'], want: /--tasks/ },
  { command: 'fv', cls: 'hang', name: '--prompts 1e8', args: ['fv', CK, '--prompts', '100000000'], want: /\d+ prompts of \d+ positions needs about [\d.]+ GiB .*more than .*; lower --prompts, --queries or --tasks/ },
  { command: 'fv', cls: 'overwrite', name: '--out onto a user’s text file', args: ['fv', CK, '--out', USER_TXT], want: /notes\.txt exists and is not a file tvlens wrote/ },
  { command: 'fv', cls: 'refusal', name: 'a foreign model', args: ['fv', at('bare-fv.onnx')], want: /bare-fv\.onnx is not a tvlens checkpoint \(no manifest beside it\): to analyse a model tvlens did not make, give --hook-map/ },
  // Training configs refused before anything is written or built.
  { command: 'train', cls: 'silent', name: '--stop-after before the first checkpoint', args: ['train', '--config', FIRST_CKPT_50, '--out', at('r1'), '--stop-after', '30'], want: /--stop-after: 30 is before the first checkpoint \(step 50/ },
  { command: 'train', cls: 'overwrite', name: 'trainTasks 999 (once refused after writing config.json)', args: ['train', '--config', TASKS_999, '--out', at('r2')], want: /task\.trainTasks: 999 exceeds/ },
  { command: 'train', cls: 'hang', name: 'train.evalPrompts 1e8', args: ['train', '--config', EVAL_1E8, '--out', at('r3')], want: /train\.evalPrompts: must be at most 100000/ },
  { command: 'train', cls: 'hang', name: 'task permutations 1e9', args: ['train', '--config', PERMS_1E9, '--out', at('r4')], want: /discrete\.permutations: expected at most 100000/ },
  { command: 'train', cls: 'hang', name: 'a 403M-parameter model', args: ['train', '--config', BIG_403M, '--out', at('r5')], want: /model: the model has \d+\.\dM parameters; tvlens builds and trains its graphs in JavaScript for models up to 100M/ },
  { command: 'study', cls: 'hang', name: 'analysis.prompts 1e9', args: ['study', STUDY_1E9, '--out', at('st')], want: /analysis\.prompts: must be at most 4096/ },
];

describe('bad input to the analysis commands: one line, exit 1, nothing written', () => {
  it.each(cases.map((c) => ({ ...c, title: `${c.command} (${c.cls}): ${c.name}` })))('$title', async (c) => {
    const before = box.snapshot();
    const t0 = performance.now();
    const r = await runCli(c.args);
    expect(performance.now() - t0, 'answered at once').toBeLessThan(20_000);
    box.expectRefusal(r, c.want, before);
  }, 60_000);
});

describe('what used to pass silently or say the wrong thing', { timeout: 60_000 }, () => {
  it('a prompts file that starts with a byte-order mark is read (message: once "an invisible character")', async () => {
    const r = await runCli(['patch', CK, '--prompts-file', BOM_PAIRS, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('attribution with identical clean and corrupted prompts prints – for every comparison (silent)', async () => {
    const same = write('inputs/same.jsonl', `${JSON.stringify({ tokens: tokens(9), corrupted: tokens(9), answer: 3, wrong: 4 })}\n`);
    const r = await runCli(['patch', CK, '--method', 'attribution', '--prompts-file', same, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { grids: { pearson: number | null; topKOverlap: number | null; warnings: string[] }[] };
    for (const g of out.grids) {
      expect([g.pearson, g.topKOverlap]).toEqual([null, null]);
      expect(g.warnings.join(' ')).toMatch(/same metric .* no effect to attribute/);
      expect(g.warnings.join(' ')).not.toMatch(/misses/);
    }
  });

  it('hooks gives a checkpoint its context and blocks (message: once "context unknown", "0 layers")', async () => {
    const r = await runCli(['hooks', CK]);
    expect(r.stdout).toMatch(new RegExp(`3 blocks, .*context ${T}`));
    fs.copyFileSync(CK, at('bare.onnx'));
    const bare = await runCli(['hooks', at('bare.onnx')]);
    expect(bare.stdout).toMatch(/no hook map yet \(blocks unknown/);
    expect(bare.stdout).not.toMatch(/ 0 layers/);
  });
});

/** A library call that must refuse with a TvlensError (not a TypeError) whose one-line message matches. */
async function refuses(f: () => Promise<unknown>, want: RegExp): Promise<void> {
  const e = await f().then(
    () => null,
    (x: unknown) => x,
  );
  expect(e, 'it threw').toBeInstanceOf(TvlensError);
  expect((e as Error).message).toMatch(want);
  expect((e as Error).message).not.toContain('\n');
}

describe('bad input to the library: a TvlensError naming the problem', { timeout: 60_000 }, () => {
  const row = [tokens(9)];
  const handBatch = (count: number, demos: number) => sampleTrainBatch(handTaskConfig(), new Rng(count * 10 + demos), count, demos);
  const libraryCases: { name: string; cls: CaseClass; call: (m: Awaited<ReturnType<typeof openModel>>) => Promise<unknown>; want: RegExp }[] = [
    { name: 'run(null)', cls: 'message', call: (m) => m.run(null as never), want: /prompts must be rows of token ids .* got null/ },
    { name: 'run(42)', cls: 'message', call: (m) => m.run(42 as never), want: /got number/ },
    { name: 'a patch without a value', cls: 'message', call: (m) => m.run(row, { patches: [{ hook: 'blocks.0.hook_resid_pre' } as never] }), want: /patch at blocks\.0\.hook_resid_pre: no value/ },
    { name: "a patch mode 'ad'", cls: 'silent', call: (m) => m.run(row, { patches: [{ hook: 'blocks.0.hook_resid_pre', value: new Array(handCfg.dModel).fill(0), mode: 'ad' as never }] }), want: /unknown mode "ad"\. Should be one of: replace, add/ },
    { name: 'a patch value with NaN', cls: 'silent', call: (m) => m.run(row, { patches: [{ hook: 'blocks.0.hook_resid_pre', value: [NaN, ...new Array(handCfg.dModel - 1).fill(0)] }] }), want: /value 0 is NaN, not a finite number/ },
    { name: 'a patch value of strings', cls: 'silent', call: (m) => m.run(row, { patches: [{ hook: 'blocks.0.hook_resid_pre', value: new Array(handCfg.dModel).fill('1') as never }] }), want: /value 0 is "1", not a finite number/ },
    { name: 'a patch value that is a string', cls: 'silent', call: (m) => m.run(row, { patches: [{ hook: 'blocks.0.hook_resid_pre', value: 'x' as never }] }), want: /must be a Tensor or a list of numbers/ },
    { name: 'prompts longer than the context', cls: 'silent', call: (m) => m.run([tokens(T + 1)]), want: new RegExp(`prompts of ${T + 1} positions are longer than the context .*\\(${T} positions\\)`) },
    { name: 'a token id beyond the vocabulary', cls: 'message', call: (m) => m.run([[1, 2, 99]]), want: /token id 99 \(prompt 0, position 2\) is outside the vocabulary .*ids 0\.\.9/ },
    { name: 'patch with clean and corrupted prompts of different lengths', cls: 'message', call: (m) => m.patch({ clean: handBatch(4, 2), corrupted: handBatch(4, 1), correct: [0, 0, 0, 0], wrong: [1, 1, 1, 1], corruption: 'given' }), want: /clean and corrupted prompts must align position by position: clean is 4 prompts × \d+ positions, corrupted 4 × \d+/ },
    { name: 'patch with a different number of corrupted prompts', cls: 'message', call: (m) => m.patch({ clean: handBatch(4, 2), corrupted: handBatch(3, 2), correct: [0, 0, 0, 0], wrong: [1, 1, 1, 1], corruption: 'given' }), want: /clean is 4 prompts × \d+ positions, corrupted 3 × \d+/ },
    { name: 'attributionPatch with no answers', cls: 'message', call: (m) => m.attributionPatch({ clean: handBatch(4, 2), corrupted: handBatch(4, 2) } as never), want: /a prompt pair's 'correct' must list one number per prompt \(4\)/ },
    { name: 'locality({ permutations: -1 })', cls: 'silent', call: (m) => m.locality(undefined, { permutations: -1 }), want: /permutations must be an integer in 1\.\.100000, got -1/ },
    { name: 'patch(undefined, { prompts: 1e7 }) (once V8 heap exhaustion)', cls: 'hang', call: (m) => m.patch(undefined, { prompts: 1e7 }), want: /activation patching over \d+ prompts .* needs about .*more than/ },
    { name: 'functionVectors(undefined, { prompts: 1e7 })', cls: 'hang', call: (m) => m.functionVectors(undefined, { prompts: 1e7 }), want: /function vectors over \d+ prompts .* needs about .*more than/ },
    { name: 'attributionPatch(undefined, { prompts: 1e7 })', cls: 'hang', call: (m) => m.attributionPatch(undefined, { prompts: 1e7 }), want: /attribution patching over \d+ prompts .* needs about .*more than/ },
    { name: 'tvSearch({ prompts: 1e8 })', cls: 'hang', call: (m) => m.tvSearch(undefined, { prompts: 1e8 }), want: /a task-vector search over \d+ prompts .* needs about .*more than/ },
    { name: 'tvSearch({ prompts: 0.5 })', cls: 'refusal', call: (m) => m.tvSearch(undefined, { prompts: 0.5 }), want: /prompts must be a positive integer, got 0\.5/ },
    { name: 'cacheToArrow onto a user’s text file', cls: 'overwrite', call: (m) => m.cacheToArrow(USER_TXT, { count: 2 }), want: /notes\.txt exists and is not a file tvlens wrote/ },
    { name: 'cacheToArrow onto a dangling symlink', cls: 'overwrite', call: (m) => m.cacheToArrow(at('dangling.arrow'), { count: 2 }), want: /symbolic link to nothing/ },
    { name: "cacheToArrow({ count: 1e9, positions: 'all' })", cls: 'hang', call: (m) => m.cacheToArrow(at('huge.arrow'), { count: 1e9, positions: 'all', chunk: 4 }), want: /huge\.arrow would take about .* more than the/ },
  ];
  for (const c of libraryCases) {
    it(`${c.cls}: ${c.name}`, async () => {
      await using m = await openModel(CK);
      const before = box.snapshot();
      await refuses(() => c.call(m), c.want);
      expect([...box.snapshot()].filter(([k, v]) => before.get(k) !== v).map(([k]) => k)).toEqual([]);
    });
  }
  it('message: openModel({ threads: 1e9 }) (once std::bad_alloc)', async () => {
    await refuses(async () => (await openModel(CK, { threads: 1e9 })).run([tokens(9)]), /threads must be an integer in 1\.\.1024, got 1000000000/);
  });
});

export const ANALYSIS_CASES = cases.length;
