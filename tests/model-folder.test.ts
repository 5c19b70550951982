/**
 * A model folder as a user has it (model.onnx, tokenizer.json, config.json), exported from PyTorch
 * with Hugging Face input names: hooks suggested from the graph, the forward pass equal to
 * PyTorch's, a text-task search with no hand-written hook map, and the bad folders refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openModel } from '../src/api/model.js';
import { runCli } from './support/cli.js';
import { GPT2, GPT2_FIXED, LLAMA, maxAbsDiff, readExpected } from './support/decoders.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-folder-'));

describe.each([
  ['GPT-2 style', GPT2],
  ['Llama style', LLAMA],
])('the %s PyTorch export', (_, dir) => {
  const expected = readExpected(dir);

  it('opens with every hook suggested: residual stream, attention and MLP outputs, per-head z, pattern', async () => {
    await using m = await openModel(dir);
    expect(m.kind).toBe('foreign');
    expect(m.layers).toBe(3);
    for (let l = 0; l < 3; l++) {
      for (const k of ['hook_resid_pre', 'attn.hook_pattern', 'attn.hook_z', 'hook_attn_out', 'hook_resid_mid', 'hook_mlp_out', 'hook_resid_post']) expect(m.hooks).toContain(`blocks.${l}.${k}`);
    }
  });

  it('matches PyTorch: logits and the residual stream at every layer to 1e-5', async () => {
    await using m = await openModel(dir);
    const { logits, cache } = await m.runWithCache(expected.inputIds, { filter: (n) => n.includes('resid') });
    expect(maxAbsDiff(logits.data as Float32Array, expected.tensors.get('logits')!.data)).toBeLessThan(1e-5);
    for (let l = 0; l <= 3; l++) expect(maxAbsDiff(cache.residual(l).data as Float32Array, expected.tensors.get(`resid.${l}`)!.data)).toBeLessThan(1e-5);
    // Per-head z is [batch, pos, head, d_head]; the pattern's rows sum to one.
    const { cache: heads } = await m.runWithCache(expected.inputIds, { names: ['blocks.1.attn.hook_z', 'blocks.1.attn.hook_pattern'] });
    expect(heads.get('blocks.1.attn.hook_z').dims).toEqual([2, expected.inputIds[0].length, 4, 12]);
    const p = heads.get('blocks.1.attn.hook_pattern');
    const T = expected.inputIds[0].length;
    expect(p.dims).toEqual([2, 4, T, T]);
    let row = 0;
    for (let k = 0; k < T; k++) row += Number(p.data[T + k]);
    expect(row).toBeCloseTo(1, 5);
  });

  it('does ICL on a shipped text task: 5-shot well above zero-shot (scored on the first answer token)', async () => {
    await using m = await openModel(dir);
    const r = await m.tvSearch({ task: ['antonyms', 'present_past'], format: 'todd', prompts: 24 }, { layers: [0, 1] });
    expect(r.average.icl.mean).toBeGreaterThan(0.75);
    expect(r.average.icl.mean - r.average.baseline.all.mean).toBeGreaterThan(0.25);
  });
});

describe('model folders through the CLI', () => {
  it('tv-search <folder> --task antonyms runs with no hook map', async () => {
    const r = await runCli(['tv-search', GPT2, '--task', 'antonyms', '--json', '--prompts', '8', '--queries', '8']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.tasks[0].task.name).toBe('antonyms');
    expect(out.options.layers).toEqual([0, 1, 2, 3]);
  });

  it('patch, locality and cache take a model folder and a text task too', async () => {
    const patch = await runCli(['patch', GPT2, '--task', 'antonyms', '--prompts', '4', '--json']);
    expect(patch.code).toBe(0);
    const loc = await runCli(['locality', GPT2, '--task', 'antonyms,present_past', '--prompts', '4', '--queries', '4', '--json']);
    expect(loc.code).toBe(0);
    expect(JSON.parse(loc.stdout.trim().split('\n').pop()!).separability).toBeDefined();
    const out = path.join(tmp(), 'c.arrow');
    const cache = await runCli(['cache', GPT2, '--task', 'antonyms', '--prompts', '6', '--out', out, '--json']);
    expect(cache.code).toBe(0);
    expect(JSON.parse(cache.stdout.trim().split('\n').pop()!).prompts).toBe(6);
  });

  it('report <folder> --task: the task-vector, locality and patching sections, from the folder\'s Model; without --task, one problem line', async () => {
    const out = path.join(tmp(), 'r.html');
    const r = await runCli(['report', GPT2, '--task', 'antonyms,present_past', '--prompts', '4', '--queries', '8', '--permutations', '20', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary.sections).toEqual(expect.arrayContaining(['task-vectors', 'locality', 'patching']));
    expect(summary.problems).toEqual([]);
    const html = fs.readFileSync(out, 'utf8');
    expect(html).toContain('tvlens patch');
    expect(html).toContain('--task antonyms,present_past');
    const bare = await runCli(['report', GPT2, '--out', path.join(tmp(), 'r.html'), '--json']);
    expect(bare.code).toBe(0);
    expect(JSON.parse(bare.stdout.trim().split('\n').pop()!).problems).toEqual([expect.stringMatching(/a model folder is analysed on text tasks: give them/)]);
    const unknown = await runCli(['report', GPT2, '--task', 'nope', '--out', path.join(tmp(), 'r.html'), '--json']);
    expect(JSON.parse(unknown.stdout.trim().split('\n').pop()!).problems).toEqual([expect.stringMatching(/no text task 'nope'/)]); // once, not per analysis
    const notFolder = await runCli(['report', 'models/offsets-4L-baseline.onnx', '--task', 'antonyms', '--out', path.join(tmp(), 'r.html')]);
    expect(notFolder.code).toBe(1);
    expect(notFolder.stderr.trim()).toMatch(/^tvlens report: error: --task: applies to model folders \(model\.onnx with tokenizer\.json\), and none is given$/);
  });

  it('fv <folder> ranks heads by AIE and its function vector lifts zero-shot accuracy', async () => {
    const r = await runCli(['fv', GPT2, '--task', 'antonyms,present_past,country_capital', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { heads: { layer: number; head: number; aie: number }[]; zeroShot: number; curve: { layer: number; accuracy: number }[] };
    expect(out.heads).toHaveLength(3 * 4);
    expect(out.heads[0].aie).toBeGreaterThanOrEqual(out.heads[11].aie);
    expect(out.curve.map((c) => c.layer)).toEqual([0, 1, 2, 3]);
    expect(Math.max(...out.curve.map((c) => c.accuracy)) - out.zeroShot).toBeGreaterThan(0.3);
  });

  it('patch --method attribution <folder>: the imported graph\'s gradient estimate beside exact patching', async () => {
    const r = await runCli(['patch', GPT2, '--task', 'antonyms', '--prompts', '8', '--method', 'attribution', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { attribution: number[][]; exact: number[][]; correlation: number };
    expect(out.attribution).toHaveLength(4);
    // Positions before the first demo label are the same in clean and corrupted prompts: no effect, estimated or exact.
    for (const g of [out.attribution, out.exact]) for (const row of g) expect(Math.abs(row[0]) + Math.abs(row[1]) + Math.abs(row[2])).toBeLessThan(1e-4);
    // The largest exact effect is estimated with its sign.
    const cells = out.exact.flatMap((row, l) => row.map((v, p) => ({ v, a: out.attribution[l][p] })));
    const top = cells.reduce((m, c) => (Math.abs(c.v) > Math.abs(m.v) ? c : m));
    expect(Math.sign(top.a)).toBe(Math.sign(top.v));
    expect(Number.isFinite(out.correlation)).toBe(true);
  });

  it('hooks <folder> prints a full suggested map', async () => {
    const r = await runCli(['hooks', LLAMA, '--json']);
    expect(r.code).toBe(0);
    const map = JSON.parse(r.stdout).suggestedHookMap as Record<string, string>;
    expect(Object.values(map)).toContain('blocks.2.attn.hook_z');
    expect(Object.values(map)).toContain('blocks.2.hook_mlp_out');
  });

  it('a fixed-length export runs prompts padded to its length and gives the dynamic export\'s logits', async () => {
    const expected = readExpected(GPT2);
    await using fixed = await openModel(GPT2_FIXED, { padTo: 64 });
    const logits = await fixed.run(expected.inputIds);
    expect(maxAbsDiff(logits.data as Float32Array, expected.tensors.get('logits')!.data)).toBeLessThan(1e-5);
  });
});

describe('bad model folders, one line each', () => {
  it('a folder without a tokenizer', async () => {
    const dir = tmp();
    fs.copyFileSync(path.join(GPT2, 'model.onnx'), path.join(dir, 'model.onnx'));
    await using m = await openModel(dir);
    expect(() => m.tokenize('hot')).toThrow(/has no tokenizer\.json/);
    const r = await runCli(['tv-search', dir, '--task', 'antonyms']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a tokenizer whose vocabulary does not match the model', async () => {
    const dir = tmp();
    fs.copyFileSync(path.join(GPT2, 'model.onnx'), path.join(dir, 'model.onnx'));
    const json = JSON.parse(fs.readFileSync(path.join(GPT2, 'tokenizer.json'), 'utf8'));
    for (let i = 0; i < 100; i++) json.model.vocab[`extra${i}`] = 784 + i;
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
    await using m = await openModel(dir);
    expect(() => m.tokenize('hot')).toThrow(/884 tokens, but .* scores 784: the tokenizer is not this model's/);
  });

  it('a folder holding only a with-past export', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'decoder_with_past_model.onnx'), '');
    return expect(openModel(dir)).rejects.toThrow(/export without it \(optimum-cli export onnx --task text-generation/);
  });

  it('a folder with no model', () => expect(openModel(tmp())).rejects.toThrow(/holds no model: expected one of model\.onnx/));
});
