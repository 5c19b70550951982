/**
 * `tvlens locality <checkpoint.onnx | run folder>…`: how strong and how local the task vectors
 * are. One checkpoint: per task, per layer separability, PCA. A run folder: every checkpoint in
 * it by step (emergence). Several arguments: side by side.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LocalityResult, LocalityRow } from '../analysis/locality.js';
import { localityTable } from '../api/tables.js';
import { runCheckpoints } from '../runs/folder.js';
import { InputError } from '../errors.js';
import { VERSION } from '../version.js';
import { command, flag, int, intList, refuseGiven } from './command.js';
import { checkOutputFile, isOwnJson } from './limits.js';
import { Progress } from './progress.js';
import { SEARCH_OPTIONS, fmt, openForPrompts, openModel, searchOptions, stageProgress, writeOut } from './open.js';
import { holdsModel } from '../backend/model-folder.js';

const nonLocal = (n: LocalityRow['nonLocality'], k: number) => fmt(n.find((x) => x.k === k)?.gain);

/** One line per model or checkpoint. */
export function localityRowsTable(rows: readonly LocalityRow[]): string {
  const name = (r: LocalityRow) => `${path.basename(path.dirname(path.dirname(r.file)))}/${path.basename(r.file)}`;
  const width = Math.max(10, ...rows.map((r) => name(r).length));
  const cols = ['step', 'L', '0-shot', 'ICL', 'peak ℓ', 'peak', 'strength', 'recov.', 'entropy', 'FWHM', '+2 ℓ', '+3 ℓ', 'sep Δ', 'sep p'];
  const line = (label: string, cells: string[]) => `${label.padEnd(width)}  ${cells.map((c, j) => c.padStart(Math.max(6, cols[j].length))).join(' ')}`;
  return [
    line('model', cols),
    ...rows.map((r) =>
      line(name(r), [
        String(r.step ?? '–'),
        String(r.layers),
        fmt(r.baseline),
        fmt(r.icl),
        String(r.peakLayer),
        fmt(r.peak),
        fmt(r.strength),
        fmt(r.recovered),
        fmt(r.entropy),
        r.halfWidth === null ? '–' : String(r.halfWidth),
        nonLocal(r.nonLocality, 2),
        nonLocal(r.nonLocality, 3),
        fmt(r.separabilityAtPeak?.difference),
        fmt(r.separabilityAtPeak?.p, 3),
      ]),
    ),
  ].join('\n');
}

/** Per task, then separability per layer. */
export function localityTable1(r: LocalityResult): string {
  const width = Math.max(8, ...r.tasks.map((t) => t.task.length));
  const cols = ['peak ℓ', 'peak', 'strength', 'recov.', 'entropy', 'FWHM', ...r.average.nonLocality.map((n) => `+${n.k} ℓ`)];
  const line = (label: string, cells: string[]) => `${label.padEnd(width)}  ${cells.map((c, j) => c.padStart(Math.max(6, cols[j].length))).join(' ')}`;
  const row = (label: string, m: LocalityResult['average'] | LocalityResult['tasks'][number]) =>
    line(label, [String(m.peakLayer), fmt(m.peak), fmt(m.strength), fmt(m.recovered), fmt(m.entropy), m.halfWidth === null ? '–' : String(m.halfWidth), ...m.nonLocality.map((n) => fmt(n.gain))]);
  const sep = r.separability.map((s) => `  ℓ=${s.layer}: within ${fmt(s.within)} between ${fmt(s.between)} Δ ${fmt(s.difference)} (d ${fmt(s.effectSize)}, p ${fmt(s.p, 3)} over ${s.permutations} label permutations)`);
  return [
    `metric: ${r.metric}; zero-shot ${fmt(r.average.baseline)}, ICL ${fmt(r.average.icl)}; strength = peak ÷ ICL${r.metric === 'nmse' ? ' on 1 − nMSE' : ''}; recovered = (peak − 0-shot) ÷ (ICL − 0-shot)`,
    `entropy: of the gain over 0-shot across layers (0 = one layer, 1 = flat); FWHM: layers around the peak with ≥ half its gain; +k ℓ: best k layers together minus the best one`,
    r.convention,
    '',
    line('task', cols),
    ...r.tasks.map((t) => row(t.task, t)),
    row('average', r.average),
    '',
    'separability of demo-prompt residuals (cosine, same task vs different tasks):',
    ...sep,
  ].join('\n');
}

export const localityCommand = command({
  name: 'locality',
  summary: 'strength and locality of task vectors: one checkpoint, a run over training, or models side by side',
  usage: 'tvlens locality <checkpoint.onnx | run folder | model.onnx --hook-map map.json --task preset> [more…] [--prompts 16] [--queries 64] [--permutations 200] [--json]',
  options: {
    ...SEARCH_OPTIONS,
    combine: intList('non-locality: best k layers together, for each k listed', { min: 1 }, [2, 3]),
    permutations: int('label permutations of the separability test', { min: 1 }, 200),
    pca: flag('keep PCA coordinates in the JSON of a series or comparison too (always kept for one checkpoint)'),
  },
  async run(values, positionals) {
    if (positionals.length === 0) throw new InputError(`name a checkpoint or a run folder. Usage: ${localityCommand.usage}`);
    if (values.out !== undefined) checkOutputFile(values.out, '--out', isOwnJson);
    const options = { ...searchOptions(values), combine: values.combine, permutations: values.permutations };
    // A model folder (model.onnx + tokenizer.json) is one model with text tasks, not a run folder.
    const folder = positionals.length === 1 && holdsModel(positionals[0]);
    const single = folder || (positionals.length === 1 && !fs.statSync(positionals[0], { throwIfNoEntry: false })?.isDirectory());
    if (single) {
      const opened = folder ? await openForPrompts(positionals[0], values) : await openModel(positionals[0], values);
      const { handle, task, file, model, note } = opened;
      const records = 'prompts' in opened ? opened.prompts : null;
      try {
        const r = await handle.locality(records ?? task!, { ...options, onProgress: stageProgress('locality', !values.json) });
        const full = { ...r, model: { ...r.model, ...model }, tvlensVersion: VERSION, task };
        writeOut(values, full);
        if (values.json) console.log(JSON.stringify(full));
        else console.log(`locality ${path.relative(process.cwd(), file)} (${note})\n${localityTable1(r)}`);
      } finally {
        await handle.close();
      }
      return;
    }
    if (values['hook-map'] !== undefined) throw new InputError('--hook-map applies to one foreign model; a series or comparison takes tvlens checkpoints');
    refuseGiven(values, ['task', 'format', 'pad-to', 'prompts-file', 'max-memory'], "applies to one model; a series or comparison runs each checkpoint's own task");
    const files = positionals.flatMap((p) => (fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ? runCheckpoints(p) : [p]));
    for (const f of files) if (!f.endsWith('.onnx') && !f.endsWith('.json')) throw new InputError(`${f} is not a checkpoint (.onnx with its .json manifest) or a run folder`);
    const bar = new Progress('locality', files.length, !values.json);
    bar.update(0);
    const { rows, results } = await localityTable(files, { ...options, pca: values.pca, open: { threads: values.threads } }, (done) => bar.update(done));
    const kind = positionals.length === 1 ? 'series' : 'comparison';
    const full = { analysis: 'locality-table', kind, tvlensVersion: VERSION, convention: results[0].convention, rows, results };
    writeOut(values, full);
    if (values.json) console.log(JSON.stringify(full));
    else console.log(`locality ${kind} of ${files.length} checkpoints\n${localityRowsTable(rows)}`);
  },
});
