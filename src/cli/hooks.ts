/**
 * `tvlens hooks <model.onnx>`: the hook points of a checkpoint, or, for a foreign model, the
 * tensors on its residual path and a hook map to start from.
 */
import path from 'node:path';
import { openModel } from '../api/model.js';
import { isModelFolder } from '../backend/model-folder.js';
import type { ResidualCandidate } from '../backend/hookmap.js';
import { InputError } from '../errors.js';
import { command, text } from './command.js';
import { checkInputFile } from './limits.js';

export interface HooksReport {
  readonly kind: 'tvlens' | 'foreign';
  readonly file: string;
  readonly modelHash: string;
  readonly layers: number;
  readonly maxSeq: number | null;
  /** The sequence length the graph's token input fixes, where it fixes one. */
  readonly staticSeq: number | null;
  readonly input: string;
  readonly output: string;
  /** Hooks the model can fetch now: a checkpoint's own, or those the hook map names. */
  readonly hooks: readonly { readonly name: string; readonly layer: number | null; readonly axes: readonly string[]; readonly tensor: string }[];
  /** Foreign models only: the residual path, from the embeddings up. */
  readonly candidates?: readonly ResidualCandidate[];
  readonly suggestedHookMap?: Readonly<Record<string, string>>;
}

export async function hooksReport(file: string, hookMap?: string): Promise<HooksReport> {
  const model = await openModel(file, { hookMap });
  try {
    const base = {
      kind: model.kind,
      file: model.file,
      modelHash: model.modelHash,
      layers: model.layers,
      // A rotary checkpoint runs at any length (maxSeq null), but was built and trained for its manifest's context.
      maxSeq: model.maxSeq ?? model.config?.maxSeq ?? null,
      staticSeq: model.staticSeq,
      input: model.io.input,
      output: model.io.output,
      hooks: model.hookPoints.map((h) => ({ name: h.name, layer: h.layer, axes: h.axes, tensor: model.tensorOf(h.name) })),
    };
    const residual = model.residualPath();
    return residual ? { ...base, candidates: residual.candidates, suggestedHookMap: residual.hookMap } : base;
  } finally {
    await model.close();
  }
}

function describe(r: HooksReport): string {
  const layers = r.kind === 'foreign' && r.hooks.length === 0 ? 'no hook map yet (blocks unknown: see the suggestion below)' : `${r.layers} blocks`;
  const lines = [`${path.basename(r.file)}: ${r.kind === 'tvlens' ? 'tvlens checkpoint' : 'foreign ONNX model'}, ${layers}, input '${r.input}', output '${r.output}', context ${r.maxSeq ?? 'unknown'}${r.staticSeq ? ` (its graph fixes the length at ${r.staticSeq}: prompts run padded to it)` : ''}, hash ${r.modelHash.slice(0, 12)}…`];
  if (r.hooks.length) {
    lines.push('', 'hooks:');
    for (const h of r.hooks) lines.push(`  ${h.name.padEnd(30)} [${h.axes.join(', ')}]${h.tensor !== h.name ? `  ← ${h.tensor}` : ''}`);
  }
  if (r.candidates) {
    if (r.candidates.length === 0) lines.push('', 'no Add nodes: cannot find the residual path; write the hook map by hand');
    else {
      lines.push('', 'residual path candidates (a chain of Adds, each feeding the next):');
      for (const c of r.candidates) lines.push(`  ${String(c.index).padStart(2)}  ${c.tensor.padEnd(36)} ${(c.node || '(graph input)').padEnd(22)} → ${c.suggested}?`);
      lines.push('', 'suggested hook map (check it, save it, pass it with --hook-map):', JSON.stringify(r.suggestedHookMap, null, 2));
    }
  }
  return lines.join('\n');
}

export const hooksCommand = command({
  name: 'hooks',
  summary: 'list a model\'s hook points, or a foreign model\'s residual tensors and a suggested hook map',
  usage: 'tvlens hooks <model.onnx | model folder> [--hook-map map.json] [--json]',
  options: {
    'hook-map': text('for a foreign model: JSON map from tensor names to hook names'),
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new InputError(`expected one model file, got ${positionals.length}. Usage: ${hooksCommand.usage}`);
    if (!isModelFolder(positionals[0])) checkInputFile(positionals[0], 'an ONNX model');
    if (values['hook-map'] !== undefined) checkInputFile(values['hook-map'], 'a hook map (JSON)');
    const report = await hooksReport(positionals[0], values['hook-map']);
    console.log(values.json ? JSON.stringify(report, null, 2) : describe(report));
  },
});
