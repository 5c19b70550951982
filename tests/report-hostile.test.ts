/**
 * Reports built from hostile names: a run folder, analysis outputs and a study summary whose every
 * string is markup meant to run a script. The HTML must carry them only as text (escaped in HTML,
 * \u003c-escaped in JSON inside <script>), and Debian's Chromium opening the pages must run none of
 * it: each payload sets window.__pwned, which must stay unset.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attributionPatch } from '../src/analysis/attribution.js';
import { GraphBackend } from '../src/backend/graph.js';
import { functionVectors } from '../src/analysis/function-vectors.js';
import { locality } from '../src/analysis/locality.js';
import { patch } from '../src/analysis/patching.js';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { writeReport } from '../src/report/index.js';
import { reproductionHtml } from '../src/report/reproduction.js';
import type { StudySummary } from '../src/study/results.js';
import { BROWSER_TESTS, CHROMIUM, CHROMIUM_ARGS, FAST_SEARCH, makeRun } from './report-fixture.js';

/** Payloads for every context a string can land in: text, a quoted attribute, a <script> element, a comment. */
const PAYLOADS = [
  '<img src=x onerror="window.__pwned=1">',
  '"><svg onload="window.__pwned=2">',
  "'><img src=x onerror='window.__pwned=3'>",
  '</script><script>window.__pwned=4</script><!--',
  '<!--<script>window.__pwned=5</script>',
];
/** A folder name cannot hold '/': the payloads that need none. */
const RUN_NAME = `run ${PAYLOADS[0]} ${PAYLOADS[1]} ${PAYLOADS[2]}`;

/** What must never appear raw in the HTML: any of these means a payload reached the page as markup. */
const RAW = ['<img src=x', '<svg onload', 'onerror="window', "onerror='window", 'onload="window', '<script>window.__pwned'];

/** Every string in `v` replaced by a payload (the keys the report matches outputs by are kept). */
function poison(v: unknown, keep: ReadonlySet<string>, i = { n: 0 }): unknown {
  if (typeof v === 'string') return `${v}${PAYLOADS[i.n++ % PAYLOADS.length]}`;
  if (Array.isArray(v)) return v.map((x) => poison(x, keep, i));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [keep.has(k) ? k : k, keep.has(k) ? x : poison(x, keep, i)]));
  }
  return v;
}

/** The options of an analysis output, each made a payload string (a hand-edited file can hold anything). */
function poisonOptions(out: Record<string, unknown>): Record<string, unknown> {
  const o = out.options as Record<string, unknown> | undefined;
  if (!o) return out;
  return { ...out, options: Object.fromEntries(Object.keys(o).map((k, i) => [k, PAYLOADS[i % PAYLOADS.length]])) };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-hostile-'));
const KEEP = new Set(['analysis', 'modelHash', 'weightsSha256', 'hash', 'metric', 'kind', 'family', 'split', 'site', 'direction', 'aieUnit', 'format']);
const files = { report: path.join(tmp, 'report.html'), given: path.join(tmp, 'given.html'), repro: path.join(tmp, 'repro.html') };

describe('reports from hostile names', { timeout: 240000 }, () => {
  beforeAll(async () => {
    const run = path.join(tmp, RUN_NAME);
    makeRun(run, { steps: [100, 200] });
    // The report computes every analysis itself: the hostile name reaches every section as a label.
    await writeReport([run], files.report, { search: FAST_SEARCH, series: true, log: () => {} });

    // Analysis outputs given as files, every string and every option a payload.
    const ckpt = loadCheckpoint(path.join(run, 'checkpoints', 'step-000200.onnx'));
    const cfg = ckpt.manifest.task as never;
    const engine = GraphBackend.fromCheckpoint(ckpt);
    const { maxTasks, prompts, queries } = FAST_SEARCH;
    const seed = 0;
    const outs: Record<string, unknown>[] = [];
    try {
      outs.push((await locality(engine, cfg, FAST_SEARCH, { file: ckpt.file, step: 200 })) as never);
      outs.push((await locality(engine, cfg, FAST_SEARCH, { file: ckpt.file, step: 200 })).search as never);
      outs.push((await patch(engine, cfg, { maxTasks, prompts, seed })) as never);
      outs.push((await functionVectors(engine, cfg, { maxTasks, prompts, shuffled: prompts, queries, seed, topK: 2 })) as never);
      outs.push((await attributionPatch(engine, cfg, { maxTasks, prompts, seed })) as never);
    } finally {
      await engine.close();
    }
    const given = outs.map((o, i) => {
      const file = path.join(tmp, `out-${i}.json`);
      fs.writeFileSync(file, JSON.stringify(poisonOptions(poison(o, KEEP) as Record<string, unknown>)));
      return file;
    });
    await writeReport([run, ...given], files.given, { search: FAST_SEARCH, series: false, explorer: false, log: () => {} });

    // A study summary with every name a payload: the study, its description, groups, factors, the command.
    const summary = JSON.parse(fs.readFileSync(path.resolve('reports/studies/paper/summary.json'), 'utf8')) as StudySummary;
    const hostile = {
      ...summary,
      study: PAYLOADS[3],
      description: PAYLOADS[0],
      command: PAYLOADS[1],
      commit: PAYLOADS[4],
      version: PAYLOADS[2],
      missing: PAYLOADS,
      cells: summary.cells.map((c, i) => ({ ...c, group: `${c.group}${PAYLOADS[i % 5]}`, key: `${c.key}${PAYLOADS[(i + 1) % 5]}`, factors: { [`train.${PAYLOADS[i % 5]}`]: PAYLOADS[(i + 2) % 5] } })),
    };
    fs.writeFileSync(files.repro, reproductionHtml(hostile as StudySummary));
  }, 240000);

  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  for (const [name, which] of [['a report the analyses were run for', 'report'], ['a report of given outputs', 'given'], ['a reproduction report', 'repro']] as const) {
    it(`${name} carries the hostile names only as text`, () => {
      const html = fs.readFileSync(files[which], 'utf8');
      // JSON data inside <script type="application/json"> must hold no '<' at all (\u003c instead).
      for (const m of html.matchAll(/<script type="application\/json"[^>]*>([\s\S]*?)<\/script>/g)) expect(m[1]).not.toContain('<');
      const text = html.replace(/<script type="application\/json"[^>]*>[\s\S]*?<\/script>/g, '');
      const leaks = RAW.flatMap((raw) => [...text.matchAll(new RegExp(raw.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g'))].map((m) => text.slice(Math.max(0, m.index - 100), m.index + 40)));
      expect(leaks).toEqual([]);
      // The names are there, as text: nothing was dropped to pass.
      expect(html).toContain(which === 'repro' ? '&lt;/script&gt;&lt;script&gt;window.__pwned=4' : 'run &lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;');
    });
  }

  it.runIf(BROWSER_TESTS)('runs no script of theirs when opened in Chromium', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      for (const file of Object.values(files)) {
        const page = await browser.newPage();
        await page.goto(`file://${file}`);
        await page.waitForTimeout(300); // an onerror fires after the image fails to load
        expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned ?? null), file).toBeNull();
        await page.close();
      }
    } finally {
      await browser.close();
    }
  });
});
