/** Reports are a pure function of their inputs (but for one timestamp line), and self-contained. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeReport } from '../src/report/index.js';
import { FAST_SEARCH, makeRun } from './report-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-report-det-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('report determinism', { timeout: 120000 }, () => {
  it('writes the same HTML twice from the same inputs, apart from the timestamp line', async () => {
    const run = path.join(tmp, 'run');
    makeRun(run);
    // The same output path both times: the methods section records the command, --out included.
    const file = path.join(tmp, 'report.html');
    await writeReport([run], file, { search: FAST_SEARCH, log: () => {}, now: new Date('2020-01-01T00:00:00Z') });
    const la = fs.readFileSync(file, 'utf8').split('\n');
    await writeReport([run], file, { search: FAST_SEARCH, log: () => {}, now: new Date('2021-06-01T12:00:00Z') });
    const lb = fs.readFileSync(file, 'utf8').split('\n');
    expect(la.length).toBe(lb.length);
    const differing = la.map((_, i) => i).filter((i) => la[i] !== lb[i]);
    expect(differing).toHaveLength(1);
    expect(la[differing[0]]).toMatch(/^<p class="stamp" id="stamp">Generated 2020-01-01T00:00:00.000Z/);
  });

  it('loads nothing from outside the file: no external scripts, styles, images or fetches', async () => {
    const run = path.join(tmp, 'run2');
    makeRun(run, { steps: [200] });
    const file = path.join(tmp, 'c.html');
    const summary = await writeReport([run], file, { search: FAST_SEARCH, log: () => {} });
    const html = fs.readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).not.toMatch(/<img[^>]+src=/i);
    expect(summary.bytes).toBe(Buffer.byteLength(html));
    expect(summary.sections).toContain('explorer');
  });
});
