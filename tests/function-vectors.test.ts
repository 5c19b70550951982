/** Function vectors (Todd et al.): head ranking by AIE, the FV sweep, and the comparison with Hendel's task vector. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { runCli as cli } from './support/cli.js';
import { writeReport } from '../src/report/report.js';
import { GraphBackend } from '../src/backend/graph.js';
import { functionVectors } from '../src/analysis/function-vectors.js';
import { InputError } from '../src/errors.js';
import { Graph } from '../src/graph/index.js';
import { resolveModelConfig } from '../src/model/config.js';
import { declareParams } from '../src/model/transformer.js';
import { resolveTaskConfig } from '../src/tasks/index.js';
import { TASK_HEAD, fvHandModel, fvHandTaskConfig, fvHandTasks } from './support/fv-hand-model.js';

const opts = { tasks: fvHandTasks, prompts: 12, shuffled: 24, queries: 32, topK: 1, seed: 3 } as const;

describe('function vectors', { timeout: 60000 }, () => {
  const engine = GraphBackend.open(fvHandModel());
  const cfg = fvHandTaskConfig();

  it('ranks the hand-built model\'s task head first, and no other head helps shuffled-label prompts', async () => {
    const r = await functionVectors(engine, cfg, opts);
    expect(r.ranking[0]).toMatchObject({ layer: TASK_HEAD.layer, head: TASK_HEAD.head, hook: 'blocks.1.attn.hook_z' });
    expect(r.aie[TASK_HEAD.layer][TASK_HEAD.head]).toBeGreaterThan(0.5);
    for (const h of r.ranking.slice(1)) expect(h.aie, `block ${h.layer} head ${h.head}`).toBeLessThan(0.05);
    for (const t of r.tasks) expect(t.aie[TASK_HEAD.layer][TASK_HEAD.head], t.task.name).toBeGreaterThan(0.5);
    expect(r.heads).toEqual([r.ranking[0]]);
    expect(r.aieUnit).toBe('p(correct)');
  });

  it('makes zero-shot prompts solve the task when added before the answer is read, and not after', async () => {
    const r = await functionVectors(engine, cfg, opts);
    const acc = (l: number) => r.average.curve[l].all.mean;
    expect(r.average.icl.mean).toBeGreaterThan(0.95);
    expect(r.average.baseline.mean).toBeLessThan(0.3);
    for (const l of [0, 1, 2]) expect(acc(l), `layer ${l}`).toBeGreaterThan(0.95);
    expect(acc(3)).toBeLessThan(0.5);
    expect(r.average.best.layer).toBe(0);
    // Hendel's task vector on the same prompts works only at layer 2, where τ has been written but the answer not yet.
    expect(r.tv!.best.layer).toBe(2);
    expect(r.tv!.curve[2].all.mean).toBeGreaterThan(0.95);
    for (const l of [0, 1, 3]) expect(r.tv!.curve[l].all.mean, `tv layer ${l}`).toBeLessThan(0.5);
    // Accuracy intervals stay in [0, 1].
    for (const c of [...r.average.curve, ...r.tv!.curve]) expect(c.all.low >= 0 && c.all.high <= 1).toBe(true);
  });

  it('rejects a top-k beyond the model\'s heads and too few demos, naming the valid range', async () => {
    await expect(functionVectors(engine, cfg, { ...opts, topK: 7 })).rejects.toThrow(/top-k must be an integer in 1\.\.6/);
    await expect(functionVectors(engine, cfg, { ...opts, shots: 1 })).rejects.toThrow(InputError);
  });

  it('ranks heads on regression prompts by the fall in normalised squared error', async () => {
    const cfgR = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, maxSeq: 24, input: 'vectors', dIn: 2, output: 'vector', dOut: 1, initStd: 0.3 });
    const g = new Graph('float32');
    declareParams(g, cfgR, 1);
    const e = GraphBackend.open({ cfg: cfgR, params: new Map(g.params.map((p) => [p.value.name, p.data as Float32Array])) });
    const tcfg = resolveTaskConfig({ kind: 'linreg', linreg: { dIn: 2 }, demos: { min: 3, max: 3 } });
    const r = await functionVectors(e, tcfg, { maxTasks: 2, prompts: 4, shuffled: 4, queries: 8, topK: 2 });
    expect(r.metric).toBe('nmse');
    expect(r.aieUnit).toBe('-nmse');
    expect(r.aie.flat().every(Number.isFinite)).toBe(true);
    expect(r.average.curve.map((c) => c.layer)).toEqual([0, 1, 2]);
    expect(r.average.curve.every((c) => Number.isFinite(c.all.mean) && c.all.mean >= 0)).toBe(true);
    await e.close();
  });

  it('runs from the CLI: tvlens fv prints the heat map as JSON, and a bad --top-k is one line and exit 1', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-fv-'));
    try {
      const { cfg: mcfg, params } = fvHandModel();
      writeCheckpoint(path.join(dir, 'hand'), mcfg, params, { step: 0, seed: 0, task: cfg, metrics: {} });
      const file = path.join(dir, 'hand.onnx');
      const ok = await cli(['fv', file, '--json', '--top-k', '2', '--prompts', '4', '--shuffled', '4', '--queries', '8', '--tasks', '2']);
      expect(ok.code, ok.stderr).toBe(0);
      const r = JSON.parse(ok.stdout);
      expect(r.analysis).toBe('function-vectors');
      expect(r.aie.map((row: number[]) => row.length)).toEqual([2, 2, 2]);
      expect(r.heads).toHaveLength(2);
      expect(r.tv.curve).toHaveLength(4);
      expect(r.model.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
      // The report draws the output given beside its checkpoint: the AIE heat map and FV against TV.
      const out = path.join(dir, 'fv.json');
      expect((await cli(['fv', file, '--top-k', '2', '--prompts', '4', '--shuffled', '4', '--queries', '8', '--tasks', '2', '--out', out])).code).toBe(0);
      const report = await writeReport([file, out], path.join(dir, 'r.html'), { analyse: false, explorer: false, series: false, log: () => {} });
      expect(report.sections).toContain('function-vectors');
      const html = fs.readFileSync(report.file, 'utf8');
      expect(html).toMatch(/average indirect effect per head/);
      expect(html).toMatch(/function vector against task vector/);
      const bad = await cli(['fv', file, '--top-k', '9']);
      expect(bad.code).toBe(1);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toMatch(/top-k must be an integer in 1\.\.6/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

