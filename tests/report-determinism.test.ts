/** Reports are a pure function of their inputs (but for one timestamp line), and self-contained. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../src/report/index.js';
import { FAST_SEARCH, makeRun } from './report-fixture.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-report-det-'));
// The same output path both times: the methods section records the command, --out included.
const file = path.join(tmp, 'report.html');
const reports: { html: string; bytes: number; sections: readonly string[] }[] = [];

describe('report determinism', () => {
  beforeAll(async () => {
    const run = path.join(tmp, 'run');
    makeRun(run);
    for (const now of ['2020-01-01T00:00:00Z', '2021-06-01T12:00:00Z']) {
      const s = await writeReport([run], file, { search: FAST_SEARCH, log: () => {}, now: new Date(now) });
      reports.push({ html: fs.readFileSync(file, 'utf8'), bytes: s.bytes, sections: s.sections });
    }
  }, 120000);
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('writes the same HTML twice from the same inputs, apart from the timestamp line', () => {
    const [la, lb] = reports.map((r) => r.html.split('\n'));
    expect(la.length).toBe(lb.length);
    const differing = la.map((_, i) => i).filter((i) => la[i] !== lb[i]);
    expect(differing).toHaveLength(1);
    expect(la[differing[0]]).toMatch(/^<p class="stamp" id="stamp">Generated 2020-01-01T00:00:00.000Z/);
  });

  it('loads nothing from outside the file: no external scripts, styles, images or fetches', () => {
    const { html, bytes, sections } = reports[0];
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).not.toMatch(/<img[^>]+src="(?!data:)/i); // images only as data: URIs
    // Outside onnxruntime-web's own bundle (whose messages cite a web page), no URL but SVG's namespace.
    const ours = html.replace(/<script type="application\/json" id="tvlens-ort-bundle">[^]*?<\/script>/, '');
    expect(ours).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(bytes).toBe(Buffer.byteLength(html));
    expect(sections).toContain('explorer');
  });

  it("draws the bench's scale curve in the methods section, as an image (an SVG there runs no script)", () => {
    const svg = fs.readFileSync(path.join(__dirname, '..', 'docs', 'bench', 'scale.svg'));
    const img = /<img alt="tvlens scale curve"[^>]*src="data:image\/svg\+xml;base64,([^"]+)">/.exec(reports[0].html);
    expect(img).not.toBeNull();
    expect(Buffer.from(img![1], 'base64').equals(svg)).toBe(true);
    expect(reports[0].html.indexOf('How the cost grows')).toBeGreaterThan(reports[0].html.indexOf('id="methods"'));
  });
});
