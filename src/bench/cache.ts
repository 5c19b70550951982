/**
 * The cost of caching: a forward pass of the reference model that also returns every residual
 * hook (what `tvlens cache --hooks resid` asks ONNX Runtime for), against the plain forward pass
 * on the same batch. The target is at most 1.2×. A model source rewrites the graph per hook set,
 * so the plain pass runs the checkpoint exactly as written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { selectHooks, writeCache } from '../analysis/cache.js';
import { FileBackend } from '../backend/file.js';
import { writeCheckpoint } from '../checkpoint/checkpoint.js';
import { inferenceGraph } from '../model/inference.js';
import { resolveModelConfig } from '../model/config.js';
import { resolveTaskConfig } from '../tasks/index.js';
import { BATCH, REFERENCE, SEQ, referenceBatch } from './foundation.js';
import { type Figures, type Repeats, sampleInterleaved } from './timing.js';

export const CACHE_OVERHEAD_TARGET = 1.2;

export async function cacheFigures(repeats: Repeats): Promise<Figures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-bench-cache-'));
  try {
    const cfg = resolveModelConfig(REFERENCE);
    const params = new Map(inferenceGraph(cfg, 0).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
    // A task whose prompts fill the reference context: 15 demos × 4 + 2 = 62 positions.
    const task = resolveTaskConfig({ kind: 'discrete', vocab: REFERENCE.vocab - 2, demos: { min: 15, max: 15 } });
    writeCheckpoint(path.join(dir, 'ref'), cfg, params, { step: 0, seed: 0, task, metrics: {} });
    const source = await FileBackend.open(path.join(dir, 'ref.onnx'));
    const resid = selectHooks(source, ['resid']);
    const all = source.facts.hooks.map((h) => h.name);
    const feeds = { tokens: referenceBatch(cfg.vocab).tokens };
    // More repeats than other groups: each pass is short (tens of ms), and the target is close.
    const t = await sampleInterleaved(
      {
        plain: () => source.run(feeds),
        resid: () => source.run(feeds, { fetch: resid }),
        all: () => source.run(feeds, { fetch: all }),
      },
      { ...repeats, timed: repeats.timed * 3, warmup: 2 },
    );
    // The whole `tvlens cache` path on as many prompts as one batch: prompt generation, the
    // forward pass, gathering rows and streaming Arrow to disk, every residual at every position.
    const write = await sampleInterleaved(
      {
        plain: () => source.run(feeds),
        write: () => writeCache(source, path.join(dir, 'c.arrow'), { task, prompts: BATCH, hooks: resid, positions: 'all', chunk: BATCH }),
      },
      repeats,
    );
    await source.close();
    return {
      cache_forward_ms: t.time('plain'),
      cache_resid_forward_ms: t.time('resid'),
      cache_overhead_ratio: t.ratio('resid', 'plain'),
      cache_all_hooks_overhead_ratio: t.ratio('all', 'plain'),
      cache_write_all_positions_ms: write.time('write'),
      cache_write_over_forward: write.ratio('write', 'plain'),
      cache_resid_hooks: resid.length,
      cache_batch_tokens: BATCH * SEQ,
      cache_overhead_target: CACHE_OVERHEAD_TARGET,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
