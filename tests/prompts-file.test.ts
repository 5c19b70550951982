/**
 * Bring-your-own prompts on the command line: tv-search, patch and cache take --prompts-file
 * instead of --task, on a checkpoint and on a foreign PyTorch export. The prompts a task config
 * draws, written out with --save-prompts and read back with --prompts-file, give the same numbers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { readCache } from '../src/analysis/cache.js';
import { residualCandidates, suggestHookMap } from '../src/backend/hookmap.js';
import { decodeModel, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { cacheCommand } from '../src/cli/cache.js';
import { type Command, parse } from '../src/cli/command.js';
import { patchCommand } from '../src/cli/patch.js';
import { tvSearchCommand } from '../src/cli/tv-search.js';
import { parsePrompts } from '../src/tasks/prompt-file.js';
import { resolveTaskConfig } from '../src/tasks/index.js';
import { handModel, handTaskConfig } from './support/tv-hand-model.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-prompts-file-'));
afterAll(() => fs.rmSync(dir, { recursive: true }));

const hand = handModel();
writeCheckpoint(path.join(dir, 'hand'), hand.cfg, hand.params, { step: 0, seed: 0, task: handTaskConfig(), metrics: {} });
const ckpt = path.join(dir, 'hand.onnx');

const TORCH = 'tests/fixtures/torch-gpt.onnx';
const torchMapFile = path.join(dir, 'torch-map.json');
fs.writeFileSync(torchMapFile, JSON.stringify({ hooks: suggestHookMap(residualCandidates(decodeModel(new Uint8Array(fs.readFileSync(TORCH)), TORCH))), maxSeq: 16 }));
const torchTaskFile = path.join(dir, 'torch-task.json');
fs.writeFileSync(torchTaskFile, JSON.stringify(resolveTaskConfig({ kind: 'discrete', vocab: 10, demos: { min: 1, max: 1 }, heldoutTasks: 2, discrete: { families: ['offset'] } })));
const torch = [TORCH, '--hook-map', torchMapFile, '--pad-to', '8'];

async function runJson(cmd: Command, argv: string[]): Promise<Record<string, unknown>> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    const { values, positionals } = parse(cmd, [...argv, '--json']);
    await cmd.run(values, positionals);
    return JSON.parse(log.mock.calls.at(-1)![0] as string);
  } finally {
    log.mockRestore();
  }
}

type Search = { tasks: { task: { name: string }; baseline: { all: { mean: number } }; icl: { mean: number }; curve: { all: { mean: number } }[]; best: { layer: number } }[]; average: unknown; prompts: string };
const searchNumbers = (r: Search) => ({ tasks: r.tasks.map((t) => [t.task.name, t.baseline.all.mean, t.icl.mean, ...t.curve.map((c) => c.all.mean), t.best.layer]), average: r.average });

describe('--prompts-file', { timeout: 120000 }, () => {
  it('gives tv-search the numbers --task gives for the same prompts, on a checkpoint and on the PyTorch export', async () => {
    for (const [label, model, task] of [
      ['checkpoint', [ckpt], []],
      ['torch', torch, ['--task', torchTaskFile]],
    ] as const) {
      const file = path.join(dir, `${label}-search.jsonl`);
      const fromTask = (await runJson(tvSearchCommand, [...model, ...task, '--tasks', '2', '--prompts', '4', '--queries', '8', '--save-prompts', file])) as unknown as Search;
      expect(parsePrompts(fs.readFileSync(file, 'utf8')).length).toBe(2 * 4 + 2 * 8);
      const fromFile = (await runJson(tvSearchCommand, [...model, '--prompts-file', file])) as unknown as Search;
      expect([fromTask.prompts, fromFile.prompts]).toEqual(['task', 'given']);
      expect(searchNumbers(fromFile), label).toEqual(searchNumbers(fromTask));
      expect(fromFile).toMatchObject({ model: { promptsFile: path.resolve(file) }, task: null });
    }
  });

  it('gives patch the grids --task gives for the same prompt pairs, on a checkpoint and on the PyTorch export', async () => {
    for (const [label, model, task] of [
      ['checkpoint', [ckpt], []],
      ['torch', torch, ['--task', torchTaskFile]],
    ] as const) {
      const file = path.join(dir, `${label}-pairs.jsonl`);
      const args = ['--site', 'resid_pre', '--tasks', '2', '--prompts', '3'];
      const fromTask = await runJson(patchCommand, [...model, ...task, ...args, '--save-prompts', file]);
      const fromFile = await runJson(patchCommand, [...model, '--prompts-file', file, '--site', 'resid_pre']);
      expect(fromFile.corruption).toBe('given');
      for (const k of ['normalized', 'logitDiff', 'accuracy', 'rows', 'clean', 'corrupted'] as const) expect(fromFile[k], `${label} ${k}`).toEqual(fromTask[k]);
    }
  });

  it('caches your own prompts at their positions', async () => {
    const file = path.join(dir, 'cache.jsonl');
    fs.writeFileSync(file, ['{"tokens": [0, 8, 1, 9, 2, 8], "position": 1}', '{"tokens": [3, 8, 4, 9, 5, 8]}'].join('\n'));
    const out = path.join(dir, 'own.arrow');
    const summary = await runJson(cacheCommand, [ckpt, '--prompts-file', file, '--out', out, '--hooks', 'blocks.1.hook_resid_post']);
    expect(summary).toMatchObject({ prompts: 2, rows: 2 });
    const cache = readCache(out);
    expect(Array.from(cache.position)).toEqual([1, 5]);
    expect(cache.meta.task).toBeNull();
  });

  it('refuses both --task and --prompts-file, a line that breaks the schema, and a foreign model with neither', async () => {
    const run = (cmd: Command, argv: string[]) => {
      const { values, positionals } = parse(cmd, argv);
      return cmd.run(values, positionals);
    };
    const good = path.join(dir, 'checkpoint-search.jsonl');
    await expect(run(tvSearchCommand, [ckpt, '--task', 'tiny', '--prompts-file', good])).rejects.toThrow(/--prompts-file: .*either .*--task.* or .*--prompts-file/);
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"tokens": [1, 2], "role": "query", "answer": 1}\n{"tokens": [1, 2], "answr": 3}\n');
    await expect(run(tvSearchCommand, [ckpt, '--prompts-file', bad])).rejects.toThrow(/bad\.jsonl:2: unknown key 'answr'. Should be one of: tokens, task/);
    fs.writeFileSync(bad, '{"tokens": [1, 99], "role": "demo"}\n{"tokens": [1], "answer": 1}\n{"tokens": [1], "answer": 2}\n');
    await expect(run(tvSearchCommand, [ckpt, '--prompts-file', bad])).rejects.toThrow(/token id 99, but .* vocabulary of 10/);
    await expect(run(tvSearchCommand, torch)).rejects.toThrow(/--task: .*foreign model.*--prompts-file/);
  });
});
