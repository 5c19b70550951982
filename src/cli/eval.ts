import type { Model } from '../api/model.js';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, InputError } from '../errors.js';
import { type GroupSummary, type ModelReport, SUITE_DEFAULTS, evaluateModel, summarise } from '../eval/suite.js';
import { taskVectorScores } from '../eval/task-vectors.js';
import { type Manifest, readManifest } from '../checkpoint/checkpoint.js';
import { latestCheckpoint } from '../runs/folder.js';
import { writeOut } from './open.js';
import { VERSION } from '../version.js';
import { MEMORY_OPTION, command, flag, int, seed, text, texts } from './command.js';
import { dMlpOf } from '../model/config.js';
import { promptLength, resolveTaskConfig } from '../tasks/index.js';
import { analysisMemory, checkMemory } from '../util/memory.js';
import { checkOutputFile, isOwnJson } from './limits.js';
import { Progress } from './progress.js';

/** A checkpoint file, or a run folder (its newest checkpoint). */
export function resolveModel(arg: string): string {
  if (fs.existsSync(arg) && fs.statSync(arg).isDirectory()) {
    const latest = latestCheckpoint(arg);
    if (!latest) throw new InputError(`${arg} holds no checkpoints`);
    return `${latest.file}.onnx`;
  }
  if (!fs.existsSync(arg)) throw new InputError(`${arg} does not exist`);
  return arg;
}

function table(groups: readonly GroupSummary[]): string {
  const keys = [...new Set(groups.flatMap((g) => Object.keys(g.figures)))];
  const cell = (g: GroupSummary, k: string) => {
    const e = g.figures[k];
    return e ? `${e.mean.toFixed(3)} [${e.low.toFixed(3)}, ${e.high.toFixed(3)}]` : 'n/a';
  };
  const head = ['figure (mean [95% CI] over models)', ...groups.map((g) => `${g.name} (n=${g.models.length})`)];
  const rows = keys.map((k) => [k, ...groups.map((g) => cell(g, k))]);
  const widths = head.map((_, i) => Math.max(...[head, ...rows].map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

/** The TVP layer of the first TVP model among `manifests`: baselines are scored at the same layer. */
function tvpLayerOf(manifests: readonly Manifest[]): number | undefined {
  for (const m of manifests) {
    const layer = (m.extra?.tvp as { tvp?: { layer?: number } } | undefined)?.tvp?.layer;
    if (layer !== undefined) return layer;
  }
  return undefined;
}

export const evalCommand = command({
  name: 'eval',
  summary: 'compare groups of models (baseline vs TVP): ICL, OOD, length generalisation, task vectors, with 95% CIs',
  usage: 'tvlens eval --group baseline=runs/b0,runs/b1,runs/b2 --group tvp=runs/t0,runs/t1,runs/t2 [--out eval.json]',
  options: {
    group: texts('name=model,model,… (checkpoints or run folders); repeat per group'),
    out: text('write the JSON here'),
    prompts: int('prompts per condition', { min: 1 }, SUITE_DEFAULTS.prompts),
    seed: seed('seed of the evaluation prompts', SUITE_DEFAULTS.seed),
    layer: int("the prescribed task-vector layer ℓ (default: each TVP model's own layer, else the middle layer)", { min: 0 }),
    'no-task-vectors': flag('skip the task-vector search'),
    ...MEMORY_OPTION,
  },
  async run(values) {
    const specs = values.group ?? [];
    if (specs.length === 0) throw new ConfigError('give at least one --group name=model,…', '--group');
    if (values.out !== undefined) checkOutputFile(values.out, '--out', isOwnJson);
    const { prompts, seed, layer: given } = values;
    if (given !== undefined && values['no-task-vectors']) throw new ConfigError('is the task-vector layer, and --no-task-vectors skips the search', '--layer');
    const groups = specs.map((s) => {
      const [name, list] = s.includes('=') ? s.split('=', 2) : [`group${specs.indexOf(s)}`, s];
      const files = list.split(',').filter(Boolean).map(resolveModel);
      if (!name || files.length === 0) throw new ConfigError(`'${s}' names no models; expected name=model,model,…`, '--group');
      return { name, files };
    });
    // Each manifest read once, for every check below.
    const manifests = new Map(groups.flatMap((g) => g.files).map((f) => [f, readManifest(f)] as const));
    if (given !== undefined) {
      // Every model must have this layer: a model without it would silently drop its rows.
      for (const [f, manifest] of manifests) {
        const L = manifest.model.layers;
        if (given > L) throw new ConfigError(`layer ${given} is out of range for ${f}, which has layers 0..${L} (0 = embeddings)`, '--layer');
      }
    }
    // Each condition runs `prompts` prompts at once: estimate that before any model runs.
    for (const [f, manifest] of manifests) {
      const m = manifest.model;
      const task = resolveTaskConfig(manifest.task);
      const seq = 2 * Math.max(promptLength(task, task.demos.max), m.maxSeq); // the longer-prompt condition too
      const est = analysisMemory({ ...m, dMlp: dMlpOf(m) }, prompts, seq, prompts);
      checkMemory(est, `evaluating ${f} on ${prompts} prompts per condition`, 'lower --prompts', values['max-memory']);
    }
    const layer = given ?? tvpLayerOf([...manifests.values()]);
    const options = {
      ...SUITE_DEFAULTS,
      prompts,
      seed,
      taskVectors: values['no-task-vectors'] ? undefined : (model: Model) => taskVectorScores(model, { layer }),
    };
    const total = groups.reduce((n, g) => n + g.files.length, 0);
    const progress = new Progress('eval', total, !values.json);
    const reports: ModelReport[][] = [];
    let done = 0;
    for (const g of groups) {
      const rs: ModelReport[] = [];
      for (const f of g.files) {
        rs.push(await evaluateModel(f, options));
        progress.update(++done, { model: path.basename(f) });
      }
      reports.push(rs);
    }
    const summaries = groups.map((g, i) => summarise(g.name, reports[i]));
    const result = { tvlensVersion: VERSION, options: { ...options, taskVectors: undefined }, groups: summaries, models: reports.flat() };
    writeOut(values, result);
    if (values.json) console.log(JSON.stringify(result));
    else console.log(table(summaries));
  },
});
