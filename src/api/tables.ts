/** Tables over many models: each opened as a Model, analysed, and closed in turn. */
import { type LocalityOptions, type LocalityResult, type LocalityRow, localityRow } from '../analysis/locality.js';
import { InputError } from '../errors.js';
import { openModel } from './model.js';
import type { OpenModelOptions } from './options.js';

/**
 * Locality of each checkpoint file, as table rows: over a run's checkpoints this is emergence
 * (how strength and the peak layer move with the step); over different models, a comparison.
 * Each model is searched with its own task config; `options` apply to all.
 */
export async function localityTable(
  files: readonly string[],
  options: LocalityOptions & { open?: OpenModelOptions } = {},
  onModel?: (done: number, total: number, file: string) => void,
): Promise<{ rows: LocalityRow[]; results: LocalityResult[] }> {
  const rows: LocalityRow[] = [];
  const results: LocalityResult[] = [];
  for (const [i, file] of files.entries()) {
    const model = await openModel(file, options.open);
    try {
      const m = model.manifest;
      if (!m) throw new InputError(`${file} is a foreign model: a locality table compares tvlens checkpoints (use tvlens locality on it alone)`);
      const r = await model.locality(undefined, options);
      results.push(r);
      rows.push(localityRow(r, { file: model.file, step: m.step, weightsSha256: m.weightsSha256, layers: m.model.layers }));
    } finally {
      await model.close();
    }
    onModel?.(i + 1, files.length, file);
  }
  return { rows, results };
}
