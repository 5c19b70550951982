/**
 * The report in a real browser: Debian's Chromium, headless, driven by playwright-core, opening
 * the file from file:// with no server and no network.
 *
 * The explorer's parity check compares onnxruntime-web (in the page, running the report's
 * injection graph) with onnxruntime-node running the analysis engine's own patched forward (the
 * one tv-search uses) on the same checkpoint, with θ recomputed in Node by `taskVectors`.
 *
 * A second report puts a discrete fixture, a small-linreg model trained for 50 steps and an
 * untrained sine fixture side by side: the explorer offers all three, shows each its own controls,
 * and the regression models' predictions (ICL, zero-shot, θ injected at every layer) match
 * onnxruntime-node within 1e-4.
 *
 * Screenshot: test-screenshot.png in a temporary folder, from the fixture (no test writes into the repository). To remake the README's screenshot
 * from a trained run, set TVLENS_REPORT_RUN=<run folder>: the test then reports on that run and
 * writes reports/screenshot.png.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBackend } from '../src/backend/graph.js';
import { analysisTasks } from '../src/analysis/batches.js';
import { taskVectors } from '../src/analysis/tv-search.js';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { writeReport } from '../src/report/index.js';
import type { ExplorerModel } from '../src/report/index.js';
import { resolveTaskConfig } from '../src/tasks/index.js';
import { loadRunConfig, resolveRunConfig } from '../src/train/config.js';
import { train } from '../src/train/loop.js';
import { Rng } from '../src/util/rng.js';
import { BROWSER_TESTS, CHROMIUM, CHROMIUM_ARGS, FAST_SEARCH, makeRun } from './report-fixture.js';
import type { ExplorerResult, VectorExplorerResult } from '../src/web/explorer-parts.js';

/** The Chromium to launch; under CI without one, an error that names the fix. */
function chromiumPath(): string {
  if (!CHROMIUM) throw new Error('no Chromium found (CI=true requires the browser tests): apt-get install chromium, or set CHROMIUM_PATH');
  return CHROMIUM;
}

const given = process.env.TVLENS_REPORT_RUN;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-report-'));
const run = given ?? path.join(tmp, 'run');
const out = path.join(tmp, 'report.html');
const screenshot = given ? path.resolve('reports/screenshot.png') : path.join(tmp, 'test-screenshot.png');

// What the explorer publishes on window.tvlensExplorer: its own result types.
type VectorRun = VectorExplorerResult;

interface ExplorerState {
  state: string;
  error: string | null;
  last: ExplorerResult | VectorExplorerResult | null;
}

const explorerState = (page: Page) => page.evaluate(() => (window as unknown as { tvlensExplorer: ExplorerState }).tvlensExplorer);

/** Changes a control and waits until the explorer has rerun for it. */
async function settle(page: Page, change: () => Promise<void>): Promise<ExplorerState> {
  await page.evaluate(() => ((window as unknown as { tvlensExplorer: ExplorerState }).tvlensExplorer.state = 'stale'));
  await change();
  await page.waitForFunction(() => ['ready', 'error'].includes((window as unknown as { tvlensExplorer: ExplorerState }).tvlensExplorer.state), null, { timeout: 60000 });
  return explorerState(page);
}

describe.runIf(BROWSER_TESTS)('the report in headless Chromium', { timeout: 180000 }, () => {
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  const requests: string[] = [];

  beforeAll(async () => {
    if (!given) makeRun(run);
    await writeReport([run], out, { search: given ? {} : FAST_SEARCH, log: () => {} });
    browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
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
    if (m.kind !== 'tokens') throw new Error(`the fixture's model should be a token model, got '${m.kind}'`);
    const taskIndex = Math.min(1, m.tasks.length - 1);
    const layer = 1;
    await settle(page, () => page.selectOption('#ex-task', String(taskIndex)).then(() => undefined));
    const prompt = '1→' + m.tasks[taskIndex].table[1] + ', 3→' + m.tasks[taskIndex].table[3] + ', 5→';
    await settle(page, () => page.fill('#ex-prompt', prompt));
    const s = await settle(page, () => page.$eval('#ex-layer', (e, l) => ((e as HTMLInputElement).value = String(l), e.dispatchEvent(new Event('input'))), layer).then(() => undefined));
    expect(s.last).toMatchObject({ task: taskIndex, layer, tokens: [1, m.arrow, m.tasks[taskIndex].table[1], m.sep, 3, m.arrow, m.tasks[taskIndex].table[3], m.sep, 5, m.arrow] });
    const last = s.last!;
    if (last.kind !== 'tokens') throw new Error('the explorer ran a token model as a regression one');

    // Node: the analysis engine on the same checkpoint, θ recomputed with the explorer's options.
    const ckpt = loadCheckpoint(path.join(run, 'checkpoints', `step-${String(m.step).padStart(6, '0')}.onnx`));
    const cfg = resolveTaskConfig(ckpt.manifest.task);
    const tasks = analysisTasks(cfg, 'train', undefined, m.thetaOptions.seed);
    expect(m.tasks[taskIndex].name).toBe(tasks[taskIndex].name);
    const engine = GraphBackend.fromCheckpoint(ckpt);
    try {
      const tv = await taskVectors(engine, cfg, tasks, { prompts: m.thetaOptions.prompts, shots: m.thetaOptions.shots, rng: new Rng(m.thetaOptions.seed).fork() });
      const theta = tv.theta[taskIndex].subarray(layer * m.dModel, (layer + 1) * m.dModel);
      const feed = (t: number[]) => ({ tokens: { dtype: 'int64' as const, shape: [1, t.length], data: BigInt64Array.from(t, BigInt) } });
      const icl = await engine.forward(feed(last.tokens));
      const zero = await engine.base(feed(last.zeroShotTokens));
      const [injected] = await engine.patched(zero, [[{ site: { kind: 'resid', layer }, positions: [last.injectPos], mode: 'replace', value: () => theta }]]);
      const close = (browserLogits: number[], node: Float32Array) => {
        expect(browserLogits.length).toBe(node.length);
        for (let i = 0; i < node.length; i++) expect(Math.abs(browserLogits[i] - node[i])).toBeLessThan(1e-4);
        expect(browserLogits.indexOf(Math.max(...browserLogits))).toBe(node.indexOf(Math.max(...node)));
      };
      close(last.icl.logits, icl);
      close(last.zeroShot.logits, zero.out);
      close(last.injected[layer].logits, injected);
    } finally {
      await engine.close();
    }
  });

  it('saves a screenshot of the whole report', async () => {
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(fs.statSync(screenshot).size).toBeGreaterThan(50000);
  });
});

describe.runIf(BROWSER_TESTS)('a report over a discrete and two regression models in headless Chromium', { timeout: 300000 }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-report-mixed-'));
  const discrete = path.join(dir, 'discrete');
  const linreg = path.join(dir, 'linreg');
  const sine = path.join(dir, 'sine');
  const file = path.join(dir, 'report.html');
  let browser: Browser;
  let page: Page;
  let models: ExplorerModel[];
  const errors: string[] = [];

  beforeAll(async () => {
    makeRun(discrete);
    // small-linreg as it is, but 50 steps: enough for a model whose predictions depend on the prompt.
    const base = loadRunConfig('small-linreg');
    await train(resolveRunConfig({ ...base, train: { ...base.train, steps: 50, evalEvery: 50, evalPrompts: 32, checkpointEvery: 50 } }), linreg);
    makeRun(sine, { task: { kind: 'sine', heldoutTasks: 2 }, steps: [200] }); // untrained weights: the parity holds all the same
    await writeReport([discrete, linreg, sine], file, { search: FAST_SEARCH, log: () => {} });
    browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1680, height: 1000 } });
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => ['ready', 'error'].includes((window as unknown as { tvlensExplorer?: ExplorerState }).tvlensExplorer?.state ?? ''), null, { timeout: 90000 });
    models = (JSON.parse(await page.$eval('#tvlens-explorer-data', (e) => e.textContent!)) as { models: ExplorerModel[] }).models;
  }, 300000);

  afterAll(async () => {
    await browser?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const visible = (sel: string) => page.$eval(sel, (e) => (e as HTMLElement).offsetParent !== null);

  it('offers every model, each with its own controls, and runs whichever is picked', async () => {
    expect(models.map((m) => m.kind)).toEqual(['tokens', 'vectors', 'vectors']);
    expect(await page.$$eval('#ex-model option', (os) => os.map((o) => o.textContent))).toEqual([expect.stringMatching(/^discrete/), expect.stringMatching(/^linreg/), expect.stringMatching(/^sine/)]);
    expect((await explorerState(page)).last?.kind).toBe('tokens');
    expect([await visible('#ex-prompt'), await visible('#ex-demos'), await visible('#ex-truth')]).toEqual([true, false, false]);

    const v = await settle(page, () => page.selectOption('#ex-model', '1').then(() => undefined));
    expect(v.error).toBeNull();
    expect(v.last).toMatchObject({ kind: 'vectors', model: 1, task: 0 });
    expect([await visible('#ex-prompt'), await visible('#ex-demos'), await visible('#ex-truth')]).toEqual([false, true, true]);
    const m = models[1];
    if (m.kind !== 'vectors') throw new Error('the second model should be a regression model');
    // 8 of the search's stand-in tasks (linreg draws a fresh w per prompt), then 4 held-out ones.
    expect(m.tasks.map((t) => t.split)).toEqual([...Array(8).fill('train'), ...Array(4).fill('heldout')]);
    expect(await page.$$eval('#ex-task option', (os) => os.length)).toBe(12);
    // The sample's demos are the task's: y = w·x (small-linreg has no label noise).
    expect(await page.$eval('#ex-expected', (e) => e.textContent)).toContain(`on ${m.shots} of ${m.shots}`);

    const t = await settle(page, () => page.selectOption('#ex-model', '0').then(() => undefined));
    expect(t.last).toMatchObject({ kind: 'tokens', model: 0 });
    expect([await visible('#ex-prompt'), await visible('#ex-demos')]).toEqual([true, false]);
    expect(errors).toEqual([]);
  });

  it('predicts for an edited regression prompt what onnxruntime-node predicts, at every layer', async () => {
    const m = models[1];
    if (m.kind !== 'vectors') throw new Error('the second model should be a regression model');
    const taskIndex = 1;
    const layer = 1;
    await settle(page, () => page.selectOption('#ex-model', '1').then(() => undefined));
    await settle(page, () => page.selectOption('#ex-task', String(taskIndex)).then(() => undefined));
    await settle(page, () => page.$eval('#ex-layer', (e, l) => ((e as HTMLInputElement).value = String(l), e.dispatchEvent(new Event('input'))), layer).then(() => undefined));
    // Six demos of the sample, their y off f(x), and a query typed in; then the button relabels them.
    const sample = m.prompts.find((p) => p.task === taskIndex)!;
    const query = [0.5, -1.25, 2, 0, -0.75];
    const text = [...sample.demos.slice(0, 6).map(([x]) => `${x.join(', ')} → 1`), `${query.join(' ')} →`].join('\n');
    const edited = await settle(page, () => page.fill('#ex-demos', text));
    expect(await page.$eval('#ex-expected', (e) => e.textContent)).toContain('on 0 of 6');
    const s = await settle(page, () => page.click('#ex-relabel'));
    expect(await page.$eval('#ex-expected', (e) => e.textContent)).toContain('on 6 of 6');
    for (const st of [edited, s]) expect(st.error).toBeNull();
    const last = s.last!;
    if (last.kind !== 'vectors') throw new Error('the explorer ran the regression model as a token one');
    const task = m.tasks[taskIndex];
    if (task.family !== 'linreg') throw new Error('small-linreg should have linreg tasks');
    const w = task.w;
    const truth = query.reduce((a, x, j) => a + w[j] * x, 0);
    expect(last).toMatchObject({ task: taskIndex, layer, injectPos: 1, zeroShotMarkers: [0, 1], markers: [...Array(6).fill([0, 1, 0, 2]).flat(), 0, 1] });
    expect(last.truth).toBeCloseTo(truth, 10);
    expect(last.zeroShotInputs.slice(0, m.dIn)).toEqual(query);

    const worst = await vectorParity(m, path.join(linreg, 'checkpoints', `step-${String(m.step).padStart(6, '0')}.onnx`), last);
    console.log(`regression explorer (linreg): max |browser − node| = ${worst.toExponential(2)} over ${m.layers + 3} predictions`);
    expect(errors).toEqual([]);
  });

  it('runs a sine model too, a sample prompt at the default layer, as onnxruntime-node does', async () => {
    const m = models[2];
    if (m.kind !== 'vectors') throw new Error('the third model should be a regression model');
    const s = await settle(page, () => page.selectOption('#ex-model', '2').then(() => undefined));
    const last = s.last!;
    if (last.kind !== 'vectors') throw new Error('the explorer ran the sine model as a token one');
    const task = m.tasks[0];
    if (task.family !== 'sine') throw new Error('the sine fixture should have sine tasks');
    const xq = last.zeroShotInputs[0];
    expect(last).toMatchObject({ model: 2, task: 0, layer: m.defaultLayer, markers: [...Array(m.shots).fill([0, 1, 0, 2]).flat(), 0, 1] });
    expect(last.truth).toBeCloseTo(task.a * Math.sin(task.b * xq + task.c), 5);
    const worst = await vectorParity(m, path.join(sine, 'checkpoints', 'step-000200.onnx'), last);
    console.log(`regression explorer (sine): max |browser − node| = ${worst.toExponential(2)} over ${m.layers + 3} predictions`);
    expect(errors).toEqual([]);
  });
});

/**
 * A regression run in the browser against onnxruntime-node: the analysis engine's own forward and
 * patched forward on the same checkpoint and the same fed inputs, θ recomputed with the explorer's
 * options (train tasks as analysisTasks and taskVectors make them). Checks ICL, zero-shot and θ
 * injected at every layer within 1e-4, and each squared error; returns the largest difference.
 */
async function vectorParity(m: ExplorerModel, file: string, last: VectorRun): Promise<number> {
  if (m.kind !== 'vectors') throw new Error(`${m.label} is not a regression model`);
  const task = m.tasks[last.task];
  expect(task.split).toBe('train');
  const ckpt = loadCheckpoint(file);
  const cfg = resolveTaskConfig(ckpt.manifest.task);
  const tasks = analysisTasks(cfg, 'train', undefined, m.thetaOptions.seed);
  expect(tasks[last.task].name).toBe(task.name);
  expect(tasks[last.task].params).toEqual(task.family === 'linreg' ? { w: task.w } : { a: task.a, b: task.b, c: task.c });
  const engine = GraphBackend.fromCheckpoint(ckpt);
  try {
    const tv = await taskVectors(engine, cfg, tasks, { prompts: m.thetaOptions.prompts, shots: m.thetaOptions.shots, rng: new Rng(m.thetaOptions.seed).fork() });
    const feed = (inputs: number[], markers: number[]) => ({
      inputs: { dtype: 'float32' as const, shape: [1, markers.length, m.dIn], data: Float32Array.from(inputs) },
      markers: { dtype: 'int64' as const, shape: [1, markers.length], data: BigInt64Array.from(markers, BigInt) },
    });
    const icl = await engine.forward(feed(last.inputs, last.markers));
    const zero = await engine.base(feed(last.zeroShotInputs, last.zeroShotMarkers));
    const layers = Array.from({ length: m.layers + 1 }, (_, l) => l);
    const theta = tv.theta[last.task];
    const injected = await engine.patched(
      zero,
      layers.map((l) => [{ site: { kind: 'resid', layer: l }, positions: [last.injectPos], mode: 'replace', value: () => theta.subarray(l * m.dModel, (l + 1) * m.dModel) }]),
    );
    const pairs: [string, number, number][] = [
      ['icl', last.icl.value, icl[0]],
      ['zero-shot', last.zeroShot.value, zero.out[0]],
      ...layers.map((l) => [`injected at ${l}`, last.injected[l].value, injected[l][0]] as [string, number, number]),
    ];
    for (const [what, browserValue, node] of pairs) expect(Math.abs(browserValue - node), what).toBeLessThan(1e-4);
    // The injection changes the prediction somewhere: θ is not a no-op.
    expect(Math.max(...layers.map((l) => Math.abs(injected[l][0] - zero.out[0])))).toBeGreaterThan(1e-6);
    for (const p of [last.icl, last.zeroShot, ...last.injected]) expect(p.sqErr).toBeCloseTo((p.value - last.truth) ** 2, 6);
    return Math.max(...pairs.map(([, a, b]) => Math.abs(a - b)));
  } finally {
    await engine.close();
  }
}
