/**
 * `tvlens hooks <model.onnx>`: the hook points of a checkpoint, or, for a foreign model, the
 * tensors on its residual path and a hook map to start from.
 */
import path from 'node:path';
import { type ResidualCandidate, residualCandidates, suggestHookMap } from '../analysis/hookmap.js';
import { isModelFolder } from '../analysis/model-folder.js';
import { ModelSource } from '../analysis/source.js';
import { suggestHooks } from '../analysis/suggest-hooks.js';
import { InputError } from '../errors.js';
import type { Command } from './command.js';
import { checkInputFile } from './limits.js';

export interface HooksReport {
  readonly kind: 'tvlens' | 'foreign';
  readonly file: string;
  readonly modelHash: string;
  readonly layers: number;
  readonly maxSeq: number | null;
  readonly input: string;
  readonly output: string;
  /** Hooks the model can fetch now: a checkpoint's own, or those the hook map names. */
  readonly hooks: readonly { readonly name: string; readonly layer: number | null; readonly axes: readonly string[]; readonly tensor: string }[];
  /** Foreign models only: the residual path, from the embeddings up. */
  readonly candidates?: readonly ResidualCandidate[];
  readonly suggestedHookMap?: Readonly<Record<string, string>>;
}

export function hooksReport(file: string, hookMap?: string): HooksReport {
  const source = ModelSource.open(file, { hookMap });
  const base = {
    kind: source.kind,
    file: source.file,
    modelHash: source.modelHash,
    layers: source.layers,
    // A rotary checkpoint runs at any length (source.maxSeq null), but was built and trained for its manifest's context.
    maxSeq: source.maxSeq ?? source.manifest?.model.maxSeq ?? null,
    input: source.tokenInput,
    output: source.output,
    hooks: source.hooks.map((h) => ({ name: h.name, layer: h.layer, axes: h.axes, tensor: source.tensorOf(h.name) })),
  };
  if (source.kind === 'tvlens') return base;
  const candidates = residualCandidates(source.model);
  // The full suggestion (residual stream, attention and MLP outputs, per-head z, pattern) where the
  // graph's blocks match; the residual stream alone otherwise.
  const full = suggestHooks(source.model);
  return { ...base, candidates, suggestedHookMap: full.layers > 0 ? full.hooks : suggestHookMap(candidates) };
}

function describe(r: HooksReport): string {
  const layers = r.kind === 'foreign' && r.hooks.length === 0 ? 'no hook map yet (blocks unknown: see the suggestion below)' : `${r.layers} blocks`;
  const lines = [`${path.basename(r.file)}: ${r.kind === 'tvlens' ? 'tvlens checkpoint' : 'foreign ONNX model'}, ${layers}, input '${r.input}', output '${r.output}', context ${r.maxSeq ?? 'unknown'}, hash ${r.modelHash.slice(0, 12)}…`];
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

export const hooksCommand: Command = {
  name: 'hooks',
  summary: 'list a model\'s hook points, or a foreign model\'s residual tensors and a suggested hook map',
  usage: 'tvlens hooks <model.onnx | model folder> [--hook-map map.json] [--json]',
  options: {
    'hook-map': { type: 'string', description: 'for a foreign model: JSON map from tensor names to hook names' },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new InputError(`expected one model file, got ${positionals.length}. Usage: ${hooksCommand.usage}`);
    if (!isModelFolder(positionals[0])) checkInputFile(positionals[0], 'an ONNX model');
    if (typeof values['hook-map'] === 'string') checkInputFile(values['hook-map'], 'a hook map (JSON)');
    const report = hooksReport(positionals[0], values['hook-map'] as string | undefined);
    console.log(values.json ? JSON.stringify(report, null, 2) : describe(report));
  },
};
