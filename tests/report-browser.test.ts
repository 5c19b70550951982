/**
 * The report in a real browser: Debian's Chromium, headless, driven by playwright-core, opening
 * the file from file:// with no server and no network.
 *
 * The explorer's parity check compares onnxruntime-web (in the page, running the report's
 * injection graph) with onnxruntime-node running the analysis engine's own patched forward (the
 * one tv-search uses) on the same checkpoint, with θ recomputed in Node by `taskVectors`.
 *
 * Screenshot: reports/test-screenshot.png from the fixture. To remake the README's screenshot
 * from a trained run, set TVLENS_REPORT_RUN=<run folder>: the test then reports on that run and
 * writes reports/screenshot.png.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, fromCheckpoint } from '../src/analysis/engine.js';
import { analysisTasks } from '../src/analysis/batches.js';
import { taskVectors } from '../src/analysis/tv-search.js';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { writeReport } from '../src/report/index.js';
import type { ExplorerModel } from '../src/report/index.js';
import { resolveTaskConfig } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';
import { CHROMIUM, CHROMIUM_ARGS, FAST_SEARCH, makeRun } from './report-fixture.js';

const given = process.env.TVLENS_REPORT_RUN;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-report-'));
const run = given ?? path.join(tmp, 'run');
const out = path.join(tmp, 'report.html');
const screenshot = path.resolve(given ? 'reports/screenshot.png' : 'reports/test-screenshot.png');

interface ExplorerState {
  state: string;
  error: string | null;
  last: { model: number; task: number; layer: number; tokens: number[]; zeroShotTokens: number[]; injectPos: number; icl: { token: number; logits: number[] }; zeroShot: { token: number; logits: number[] }; injected: { token: number; logits: number[] }[] } | null;
}

const explorerState = (page: Page) => page.evaluate(() => (window as unknown as { tvlensExplorer: ExplorerState }).tvlensExplorer);

/** Changes a control and waits until the explorer has rerun for it. */
async function settle(page: Page, change: () => Promise<void>): Promise<ExplorerState> {
  await page.evaluate(() => ((window as unknown as { tvlensExplorer: ExplorerState }).tvlensExplorer.state = 'stale'));
  await change();
  await page.waitForFunction(() => ['ready', 'error'].includes((window as unknown as { tvlensExplorer: ExplorerState }).tvlensExplorer.state), null, { timeout: 60000 });
  return explorerState(page);
}

describe('the report in headless Chromium', { timeout: 180000 }, () => {
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const requests: string[] = [];

  beforeAll(async () => {
    if (!given) makeRun(run);
    await writeReport([run], out, { search: given ? {} : FAST_SEARCH, log: () => {} });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1680, height: 1000 } });
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(`file://${out}`);
    await page.waitForFunction(() => ['ready', 'error'].includes((window as unknown as { tvlensExplorer?: ExplorerState }).tvlensExplorer?.state ?? ''), null, { timeout: 90000 });
  }, 180000);

  afterAll(async () => {
    await browser?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('loads from file:// and runs the explorer with no console errors and no network request', async () => {
    const s = await explorerState(page);
    expect(s.error).toBeNull();
    expect(s.state).toBe('ready');
    expect(errors).toEqual([]);
    // The page itself, and the Blob URL onnxruntime-web is imported from: nothing from a network.
    expect(requests.filter((u) => !u.startsWith('file://') && !u.startsWith('blob:') && !u.startsWith('data:'))).toEqual([]);
  });

  it('draws every chart with marks in it', async () => {
    const charts = await page.$$eval('svg.chart', (svgs) =>
      svgs.map((s) => {
        const box = s.getBoundingClientRect();
        const marks = s.querySelectorAll('.marks polyline[points]:not([points=""]), .marks circle, .marks rect, .marks polygon').length;
        // PCA layers other than the chosen one are hidden until picked (checked below).
        const hidden = s.closest('.pca-layer') !== null && box.width === 0;
        return { label: s.getAttribute('aria-label'), width: box.width, height: box.height, marks, hidden };
      }),
    );
    expect(charts.filter((c) => !c.hidden).length).toBeGreaterThanOrEqual(8);
    for (const c of charts) {
      expect(c.marks, `${c.label} has marks`).toBeGreaterThan(0);
      if (!c.hidden) expect(c.width * c.height, `${c.label} has a size`).toBeGreaterThan(10000);
    }
    // Picking a layer shows its PCA scatter, and only that one.
    for (const radio of await page.$$('#pca0 input[type=radio]')) {
      await radio.check();
      const shown = await page.$$eval('#pca0 .pca-layer', (ds) => ds.filter((d) => d.getBoundingClientRect().width > 0).map((d) => d.getAttribute('data-layer')));
      expect(shown).toEqual([await radio.getAttribute('value')]);
    }
    const sections = await page.$$eval('section', (s) => s.map((x) => x.id));
    expect(sections).toEqual(expect.arrayContaining(['overview', 'training', 'task-vectors', 'locality', 'patching', 'emergence', 'explorer', 'methods']));
  });

  it('predicts in the browser what onnxruntime-node predicts for the same prompt and layer', async () => {
    const data = JSON.parse(await page.$eval('#tvlens-explorer-data', (e) => e.textContent!)) as { models: ExplorerModel[] };
    const m = data.models[0];
    const taskIndex = Math.min(1, m.tasks.length - 1);
    const layer = 1;
    await settle(page, () => page.selectOption('#ex-task', String(taskIndex)).then(() => undefined));
    const prompt = '1→' + m.tasks[taskIndex].table[1] + ', 3→' + m.tasks[taskIndex].table[3] + ', 5→';
    await settle(page, () => page.fill('#ex-prompt', prompt));
    const s = await settle(page, () => page.$eval('#ex-layer', (e, l) => ((e as HTMLInputElement).value = String(l), e.dispatchEvent(new Event('input'))), layer).then(() => undefined));
    expect(s.last).toMatchObject({ task: taskIndex, layer, tokens: [1, m.arrow, m.tasks[taskIndex].table[1], m.sep, 3, m.arrow, m.tasks[taskIndex].table[3], m.sep, 5, m.arrow] });

    // Node: the analysis engine on the same checkpoint, θ recomputed with the explorer's options.
    const ckpt = loadCheckpoint(path.join(run, 'checkpoints', `step-${String(m.step).padStart(6, '0')}.onnx`));
    const cfg = resolveTaskConfig(ckpt.manifest.task);
    const tasks = analysisTasks(cfg, 'train', undefined, m.thetaOptions.seed);
    expect(m.tasks[taskIndex].name).toBe(tasks[taskIndex].name);
    const engine = Engine.open(fromCheckpoint(ckpt));
    try {
      const tv = await taskVectors(engine, cfg, tasks, { prompts: m.thetaOptions.prompts, shots: m.thetaOptions.shots, rng: new Rng(m.thetaOptions.seed).fork() });
      const theta = tv.theta[taskIndex].subarray(layer * m.dModel, (layer + 1) * m.dModel);
      const feed = (t: number[]) => ({ tokens: { dtype: 'int64' as const, shape: [1, t.length], data: BigInt64Array.from(t, BigInt) } });
      const icl = await engine.forward(feed(s.last!.tokens));
      const zero = await engine.base(feed(s.last!.zeroShotTokens));
      const [injected] = await engine.patched(zero, [[{ site: { kind: 'resid', layer }, positions: [s.last!.injectPos], mode: 'replace', value: () => theta }]]);
      const close = (browserLogits: number[], node: Float32Array) => {
        expect(browserLogits.length).toBe(node.length);
        for (let i = 0; i < node.length; i++) expect(Math.abs(browserLogits[i] - node[i])).toBeLessThan(1e-4);
        expect(browserLogits.indexOf(Math.max(...browserLogits))).toBe(node.indexOf(Math.max(...node)));
      };
      close(s.last!.icl.logits, icl);
      close(s.last!.zeroShot.logits, zero.out);
      close(s.last!.injected[layer].logits, injected);
    } finally {
      await engine.release();
    }
  });

  it('saves a screenshot of the whole report', async () => {
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(fs.statSync(screenshot).size).toBeGreaterThan(50000);
  });
});
