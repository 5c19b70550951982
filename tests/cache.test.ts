/**
 * Activation caches: the Arrow file's layout and metadata, a round trip against direct runs,
 * prompt determinism across chunk sizes, hook and position selection, the model-hash check, and
 * memory that stays flat as the number of prompts grows.
 */
import { promptFeeds } from '../src/backend/backend.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as arrow from 'apache-arrow';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { positionsOf, readCache, selectHooks, writeCache } from '../src/analysis/cache.js';
import { FileBackend } from '../src/backend/file.js';
import { cacheCommand, cacheInfoCommand } from '../src/cli/cache.js';
import { type Command, parse, parseIndexList as parseLayers } from '../src/cli/command.js';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { inferenceGraph } from '../src/model/inference.js';
import { InputError } from '../src/errors.js';
import { type ModelConfig, resolveModelConfig } from '../src/model/config.js';
import { type TaskConfig, resolveTaskConfig, sampleBatch } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';

const TASK = resolveTaskConfig({ kind: 'discrete', vocab: 16, demos: { min: 2, max: 2 } });
const CFG = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, vocab: 18, maxSeq: 12, initStd: 0.3 });

function checkpoint(dir: string, cfg: ModelConfig, task: TaskConfig, seed: number): string {
  const params = new Map(inferenceGraph(cfg, seed).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
  const file = path.join(dir, `ckpt-${seed}`);
  writeCheckpoint(file, cfg, params, { step: 0, seed, task, metrics: {} });
  return `${file}.onnx`;
}

let dir: string;
let source: FileBackend;
let other: FileBackend;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-cache-'));
  source = await FileBackend.open(checkpoint(dir, CFG, TASK, 1));
  other = await FileBackend.open(checkpoint(dir, CFG, TASK, 2));
  return async () => {
    await source.close();
    await other.close();
  };
});

const HOOKS = ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_post', 'blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_z', 'hook_pos_embed'];

describe('activation cache files', () => {
  it('are Arrow IPC files with int32 index columns, one fixed-size float list per hook, and the run recorded in the metadata', async () => {
    const file = path.join(dir, 'layout.arrow');
    await writeCache(source, file, { task: TASK, prompts: 5, seed: 9, hooks: HOOKS, positions: 'arrows', chunk: 2 });
    const bytes = fs.readFileSync(file);
    expect(bytes.subarray(0, 6).toString('latin1')).toBe('ARROW1');
    expect(bytes.subarray(bytes.length - 6).toString('latin1')).toBe('ARROW1');
    const table = arrow.tableFromIPC(bytes);
    const T = 10;
    expect(table.numRows).toBe(5 * 3); // 2 demo arrows + the query's
    expect(table.batches.length).toBe(3); // one record batch per chunk
    const types = Object.fromEntries(table.schema.fields.map((f) => [f.name, String(f.type)]));
    expect(types).toEqual({
      prompt_id: 'Int32',
      task_id: 'Int32',
      position: 'Int32',
      'blocks.0.hook_resid_pre': 'FixedSizeList[16]<Float32>',
      'blocks.1.hook_resid_post': 'FixedSizeList[16]<Float32>',
      'blocks.0.attn.hook_pattern': `FixedSizeList[${2 * T}]<Float32>`,
      'blocks.1.attn.hook_z': 'FixedSizeList[16]<Float32>',
      hook_pos_embed: 'FixedSizeList[16]<Float32>',
    });
    const pattern = table.schema.fields.find((f) => f.name === 'blocks.0.attn.hook_pattern')!;
    expect(JSON.parse(pattern.metadata.get('shape')!)).toEqual([2, T]);
    expect(JSON.parse(pattern.metadata.get('axes')!)).toEqual(['head', 'key_pos']);
    const meta = table.schema.metadata;
    expect(meta.get('model_hash')).toBe(source.facts.modelHash);
    expect(meta.get('prompt_seed')).toBe('9');
    expect(meta.get('tvlens_version')).toMatch(/^\d+\.\d+\.\d+/);
    expect(JSON.parse(meta.get('tvlens.cache')!).task).toEqual(TASK);
  });

  it('read back as typed arrays equal to what direct runs of the same prompts fetch', async () => {
    const file = path.join(dir, 'roundtrip.arrow');
    await writeCache(source, file, { task: TASK, prompts: 7, seed: 4, hooks: HOOKS, positions: 'all', chunk: 3 });
    const cache = readCache(file, { expectModelHash: source.facts.modelHash });
    const batch = sampleBatch(TASK, new Rng(4), 7, { demos: 2 });
    const T = batch.seq;
    const direct = await source.run(promptFeeds(batch), { fetch: HOOKS });
    expect(cache.rows).toBe(7 * T);
    expect(Array.from(cache.promptId)).toEqual(Array.from({ length: 7 * T }, (_, r) => Math.floor(r / T)));
    expect(Array.from(cache.position)).toEqual(Array.from({ length: 7 * T }, (_, r) => r % T));
    expect(Array.from(cache.taskId)).toEqual(Array.from({ length: 7 * T }, (_, r) => batch.taskIds[Math.floor(r / T)]));
    const at = (h: string, idx: number[]) => {
      const t = direct.hooks[h];
      const strides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, c) => a * c, 1));
      return (t.data as Float32Array)[idx.reduce((s, v, i) => s + v * strides[i], 0)];
    };
    for (const r of [0, 5, 3 * T + 9, 7 * T - 1]) {
      const [b, p] = [cache.promptId[r], cache.position[r]];
      const resid = cache.hooks['blocks.1.hook_resid_post'];
      expect(Array.from(resid.data.subarray(r * 16, (r + 1) * 16))).toEqual(Array.from({ length: 16 }, (_, d) => at('blocks.1.hook_resid_post', [b, p, d])));
      const pat = cache.hooks['blocks.0.attn.hook_pattern'];
      expect(pat.shape).toEqual([2, T]);
      expect(pat.data[r * 2 * T + 1 * T + 3]).toBe(at('blocks.0.attn.hook_pattern', [b, 1, p, 3])); // head 1, key 3
      expect(cache.hooks['blocks.1.attn.hook_z'].data[r * 16 + 8 + 2]).toBe(at('blocks.1.attn.hook_z', [b, p, 1, 2]));
      expect(cache.hooks.hook_pos_embed.data[r * 16 + 4]).toBe(at('hook_pos_embed', [0, p, 4]));
    }
  });

  it('hold the same prompts whatever the chunk size', async () => {
    const a = path.join(dir, 'chunk-a.arrow');
    const b = path.join(dir, 'chunk-b.arrow');
    await writeCache(source, a, { task: TASK, prompts: 9, seed: 1, hooks: ['blocks.1.hook_resid_post'], chunk: 2 });
    await writeCache(source, b, { task: TASK, prompts: 9, seed: 1, hooks: ['blocks.1.hook_resid_post'], chunk: 9 });
    const [ca, cb] = [readCache(a), readCache(b)];
    expect(ca.taskId).toEqual(cb.taskId);
    expect(ca.hooks['blocks.1.hook_resid_post'].data).toEqual(cb.hooks['blocks.1.hook_resid_post'].data);
  });

  it("keep each prompt's last arrow with 'last-arrow', the same as position -1 in the triplet format", async () => {
    const batch = sampleBatch(TASK, new Rng(0), 2, { demos: 2 });
    expect(positionsOf('last-arrow', batch, 0)).toEqual([9]);
    expect(positionsOf([-1, 0], batch, 1)).toEqual([9, 0]);
    expect(positionsOf('arrows', batch, 1)).toEqual([1, 5, 9]);
    expect(() => positionsOf([10], batch, 0)).toThrow(/position 10 is out of range: prompts have positions 0\.\.9/);
  });

  it('select hooks by name, glob, the resid preset and block, and refuse a block out of range', () => {
    expect(selectHooks(source, ['resid'])).toEqual(['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']);
    expect(selectHooks(source, ['blocks.*.attn.hook_z', 'hook_embed'])).toEqual(['hook_embed', 'blocks.0.attn.hook_z', 'blocks.1.attn.hook_z']);
    expect(selectHooks(source, ['*resid*'], [1])).toEqual(['blocks.1.hook_resid_pre', 'blocks.1.hook_resid_mid', 'blocks.1.hook_resid_post']);
    expect(() => selectHooks(source, ['resid'], [2])).toThrow(/block 2 is out of range: this model's blocks are 0\.\.1/);
    expect(() => selectHooks(source, ['blocks.*.hook_nothing'])).toThrow(/matches no hook/);
  });

  it('made from one model are refused when read for another (hash mismatch)', async () => {
    const file = path.join(dir, 'hash.arrow');
    await writeCache(source, file, { task: TASK, prompts: 2, hooks: ['blocks.0.hook_resid_post'] });
    expect(other.facts.modelHash).not.toBe(source.facts.modelHash);
    expect(() => readCache(file, { expectModelHash: other.facts.modelHash })).toThrow(InputError);
    expect(() => readCache(file, { expectModelHash: other.facts.modelHash })).toThrow(
      new RegExp(`cache .* was made from model ${source.facts.modelHash.slice(0, 12)}.*, not ${other.facts.modelHash.slice(0, 12)}`),
    );
  });

  it('are not written at all when the prompts do not fit the context', async () => {
    const file = path.join(dir, 'too-long.arrow');
    await expect(writeCache(source, file, { task: TASK, prompts: 2, demos: 3, hooks: ['blocks.0.hook_resid_post'] })).rejects.toThrow(/prompts longer than the model's context: they have 14 positions/);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('too-long'))).toEqual([]);
  });
});

describe('the cache commands', () => {
  const cli = async (cmd: Command, argv: string[]) => {
    const { values, positionals } = parse(cmd, argv);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      await cmd.run(values, positionals);
      return log.mock.calls.map((c) => String(c[0])).join('\n');
    } finally {
      log.mockRestore();
    }
  };

  it('write a cache with the checkpoint\'s own task config, and check it against a model', async () => {
    const out = path.join(dir, 'cli.arrow');
    const summary = JSON.parse(await cli(cacheCommand, [source.facts.file, '--out', out, '--prompts', '5', '--blocks', '1', '--hooks', '*resid_post', '--positions=-1,0', '--json']));
    expect(summary).toMatchObject({ prompts: 5, rows: 10, hooks: ['blocks.1.hook_resid_post'], modelHash: source.facts.modelHash });
    const info = JSON.parse(await cli(cacheInfoCommand, [out, '--model', source.facts.file, '--json']));
    expect(info).toMatchObject({ rows: 10, positions: [-1, 0], seed: 0, demos: 2 });
    await expect(cli(cacheInfoCommand, [out, '--model', other.facts.file])).rejects.toThrow(/was made from model/);
    expect(parseLayers('0,2-3')).toEqual([0, 2, 3]);
    expect(() => parseLayers('1..3')).toThrow(/not a layer list/);
  });
});

describe('cache memory', () => {
  it('stays flat when writing 8× more prompts', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    // A wider model and every hook at every position: ~120 KB per prompt, so 256 prompts are ~30 MB
    // of activations. Held in memory, they would show far above the bound below.
    const task = resolveTaskConfig({ kind: 'discrete', vocab: 16, demos: { min: 6, max: 6 } });
    const cfg = resolveModelConfig({ layers: 2, dModel: 64, heads: 4, vocab: 18, maxSeq: 32 });
    const big = await FileBackend.open(checkpoint(fs.mkdtempSync(path.join(dir, 'mem-')), cfg, task, 3));
    const hooks = big.facts.hooks.map((h) => h.name);
    const growth = async (prompts: number) => {
      gc();
      const used = () => process.memoryUsage().heapUsed + process.memoryUsage().external;
      const base = used();
      let peak = 0;
      const summary = await writeCache(big, path.join(dir, `mem-${prompts}.arrow`), { task, prompts, hooks, positions: 'all', chunk: 16 }, () => {
        gc();
        peak = Math.max(peak, used() - base);
      });
      return { peak, bytes: summary.bytes };
    };
    await growth(16); // warm the sessions and the code paths
    const small = await growth(32);
    const large = await growth(256);
    await big.close();
    expect(large.bytes).toBeGreaterThan(25 * 2 ** 20);
    expect(large.peak).toBeLessThan(small.peak + 6 * 2 ** 20);
    expect(large.peak).toBeLessThan(large.bytes / 3);
  }, 60_000);
});
