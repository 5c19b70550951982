/**
 * Bad input to a report: each problem is said once at the top of the report and on the log
 * (stderr by default), and every section that can still be drawn is drawn.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { localityTable } from '../src/api/tables.js';
import { runCheckpoints } from '../src/runs/folder.js';
import { InputError } from '../src/errors.js';
import { writeReport } from '../src/report/index.js';
import { FAST_SEARCH, makeRun } from './report-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-report-bad-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
// The explorer is left out where a test does not need it: it adds seconds, not coverage here.
const quick = { search: FAST_SEARCH, explorer: false, series: false } as const;

async function report(inputs: string[], options: Record<string, unknown> = {}) {
  const file = path.join(tmp, `r${Math.random().toString(36).slice(2)}.html`);
  const logged: string[] = [];
  const summary = await writeReport(inputs, file, { ...quick, log: (l) => logged.push(l), ...options });
  return { summary, html: fs.readFileSync(file, 'utf8'), logged };
}

describe('reports over bad input', { timeout: 120000 }, () => {
  it('says that a run has no metrics, and still draws its task-vector section', async () => {
    const run = path.join(tmp, 'no-metrics');
    makeRun(run, { metrics: false, steps: [200] });
    const { summary, html, logged } = await report([run]);
    expect(summary.problems.join('\n')).toMatch(/no-metrics: no metrics\.jsonl, so there are no training curves/);
    expect(logged.join('\n')).toMatch(/warning: no-metrics: no metrics\.jsonl/);
    expect(html).toContain('class="problems"');
    // The shots curve comes from the checkpoint's manifest; the curves against step are missing.
    expect(html).not.toContain('aria-label="training loss against step"');
    expect(html).toContain('aria-label="ICL accuracy against shots"');
    expect(summary.sections).toEqual(expect.arrayContaining(['overview', 'training', 'task-vectors', 'methods']));
  });

  it('does not compare models trained on different task sets, says so in the methods, and draws each on its own', async () => {
    const a = path.join(tmp, 'offsets-and-perms');
    const b = path.join(tmp, 'offsets-only');
    makeRun(a, { steps: [200] });
    makeRun(b, { steps: [200], task: { discrete: { families: ['offset'], permutations: 4 } } });
    const { summary, html, logged } = await report([a, b]);
    const msg = /different task sets \(offsets-and-perms: discrete \(offset, permutation\).*offsets-only: discrete \(offset\)/;
    expect(summary.problems.join('\n')).not.toMatch(msg);
    expect(html).toMatch(msg);
    void logged;
    expect(html).toMatch(/task-vector accuracy against layer, offsets-and-perms/);
    expect(html).toMatch(/task-vector accuracy against layer, offsets-only/);
  });

  it('notes inputs that do not exist or are not tvlens files, and reports on the rest', async () => {
    const run = path.join(tmp, 'good');
    makeRun(run, { steps: [200] });
    const junk = path.join(tmp, 'junk.json');
    fs.writeFileSync(junk, '{"hello": 1}');
    const { summary } = await report([run, path.join(tmp, 'missing'), junk], { analyse: false });
    expect(summary.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/missing does not exist/), expect.stringMatching(/junk\.json is neither a run folder, a tvlens checkpoint .* nor an analysis output/)]),
    );
    expect(summary.sections).toContain('training');
  });

  it('fails with a clear error, and writes no file, when no input is usable', async () => {
    const file = path.join(tmp, 'none.html');
    await expect(writeReport([path.join(tmp, 'nope')], file, { ...quick, log: () => {} })).rejects.toThrow(InputError);
    await expect(writeReport([path.join(tmp, 'nope')], file, { ...quick, log: () => {} })).rejects.toThrow(/nothing to report on: .*nope does not exist/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('makes the CLI print one clear line and exit non-zero when no input is usable', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'report', path.join(tmp, 'nope'), '--out', path.join(tmp, 'x.html')], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^tvlens report: error: nothing to report on: .*nope does not exist$/);
    expect(fs.existsSync(path.join(tmp, 'x.html'))).toBe(false);
  });

  it('draws analysis outputs given as files, matched to checkpoints by weights hash, without running them again', async () => {
    const run = path.join(tmp, 'given');
    makeRun(run);
    // What `tvlens locality <run folder> --out …` writes: one locality result per checkpoint.
    const { rows, results } = await localityTable(runCheckpoints(run), { ...FAST_SEARCH, pca: true });
    const table = path.join(tmp, 'given-locality.json');
    fs.writeFileSync(table, JSON.stringify({ analysis: 'locality-table', kind: 'series', rows, results }));
    const { summary, html, logged } = await report([run, table], { analyse: false, series: true });
    expect(logged.filter((l) => l.startsWith('report:'))).toEqual([]); // nothing was run
    expect(summary.sections).toEqual(expect.arrayContaining(['task-vectors', 'locality', 'emergence']));
    expect(html).toContain('class="pca"');
    expect(summary.sections).not.toContain('patching');
    expect(html).toContain(`given: ${table}`);
  });
});
