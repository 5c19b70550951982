/**
 * Foreign-model figures: a task-vector search over every layer of a model tvlens did not make,
 * through its hook map, by the graph split (prefix once in the base run, the suffix per layer)
 * against the naive path (one full patched run per layer), with the results compared. The model
 * is the PyTorch export the tests use (2 blocks, d_model 16, 12 tokens, a graph fixed at 8
 * positions), and a deeper one of the same kind, a tvlens-built 6-block GPT read only through its
 * ONNX graph and a hook map (no manifest).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { residualCandidates, suggestHookMap } from '../backend/hookmap.js';
import { FileBackend } from '../backend/file.js';
import { type TvSearchResult, tvSearch } from '../analysis/tv-search.js';
import { decodeModel, writeCheckpoint } from '../checkpoint/checkpoint.js';
import { Graph } from '../graph/index.js';
import { resolveModelConfig } from '../model/config.js';
import { residualAtLayer } from '../model/hooks.js';
import { declareParams } from '../model/transformer.js';
import { type TaskConfig, resolveTaskConfig } from '../tasks/index.js';
import { PACKAGE_ROOT } from '../version.js';
import { type Figures, type Repeats, sampleInterleaved, spread } from './timing.js';

const TORCH = path.join(PACKAGE_ROOT, 'tests', 'fixtures', 'torch-gpt.onnx');

async function figures(label: string, open: (split: boolean) => Promise<FileBackend>, task: TaskConfig, options: object, repeats: Repeats): Promise<Figures> {
  const [split, naive] = [await open(true), await open(false)];
  try {
    const results: Record<string, TvSearchResult> = {};
    const stages: Record<string, number[]> = { split: [], naive: [] };
    const t = await sampleInterleaved(
      {
        split: async () => {
          results.split = await tvSearch(split, task, options);
          stages.split.push(results.split.cost.ms.search);
        },
        naive: async () => {
          results.naive = await tvSearch(naive, task, options);
          stages.naive.push(results.naive.cost.ms.search);
        },
      },
      repeats,
    );
    const timedStage = (k: string) => stages[k].slice(-repeats.timed); // drop the warm-up calls
    const curve = (r: TvSearchResult) => JSON.stringify(r.tasks.map((x) => [x.baseline.all.mean, ...x.curve.map((c) => c.all.mean), x.best.layer]));
    const split_ = timedStage('split');
    const naive_ = timedStage('naive');
    return {
      [`${label}_tv_search_ms`]: t.time('split'),
      [`${label}_tv_search_naive_ms`]: t.time('naive'),
      [`${label}_tv_search_over_naive`]: t.ratio('split', 'naive'),
      [`${label}_search_stage_over_naive`]: spread(split_.map((s, i) => s / naive_[i])),
      [`${label}_results_identical`]: curve(results.split) === curve(results.naive) ? 1 : 0,
    };
  } finally {
    await split.close();
    await naive.close();
  }
}

export async function foreignFigures(repeats: Repeats): Promise<Figures> {
  // The PyTorch export: offsets on 10 symbols, 1 demo, every prompt padded to the 8 positions its graph runs at.
  const torchMap = suggestHookMap(residualCandidates(decodeModel(new Uint8Array(fs.readFileSync(TORCH)), TORCH)));
  const torchTask = resolveTaskConfig({ kind: 'discrete', vocab: 10, demos: { min: 1, max: 1 }, heldoutTasks: 2, discrete: { families: ['offset'] } });
  const torch = await figures('foreign', (split) => FileBackend.open(TORCH, { hookMap: torchMap, padTo: 8, split }), torchTask, { maxTasks: 4, prompts: 16, queries: 64, seed: 0 }, repeats);

  // A deeper GPT of the same kind: 6 blocks, d_model 64, read through its graph and a hook map only.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-bench-foreign-'));
  try {
    const cfg = resolveModelConfig({ layers: 6, dModel: 64, heads: 4, dMlp: 256, vocab: 34, maxSeq: 64 });
    const g = new Graph('float32');
    declareParams(g, cfg, 0);
    const task = resolveTaskConfig({ kind: 'discrete', vocab: 32, demos: { min: 4, max: 4 }, heldoutTasks: 4 });
    writeCheckpoint(path.join(dir, 'deep'), cfg, new Map(g.params.map((p) => [p.value.name, p.data as Float32Array])), { step: 0, seed: 0, task, metrics: {} });
    fs.mkdirSync(path.join(dir, 'bare'));
    const bare = path.join(dir, 'bare', 'deep.onnx');
    fs.copyFileSync(path.join(dir, 'deep.onnx'), bare);
    const hookMap = { hooks: Object.fromEntries(Array.from({ length: cfg.layers + 1 }, (_, l) => [residualAtLayer(l).name, residualAtLayer(l).name])), maxSeq: cfg.maxSeq };
    const deep = await figures('foreign_deep', (split) => FileBackend.open(bare, { hookMap, split }), task, { maxTasks: 8, prompts: 8, queries: 64, seed: 0 }, repeats);
    return { ...torch, ...deep, foreign_tv_search_target: 0.6 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
