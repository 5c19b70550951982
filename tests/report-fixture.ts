/**
 * Run folders for the report tests, made in well under a second: a small config, checkpoints with
 * freshly initialised weights (a different seed per step) and synthetic metrics lines. The report
 * only reads these files, so untrained weights exercise every path; the numbers are just not
 * interesting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { Graph } from '../src/graph/index.js';
import { declareParams } from '../src/model/transformer.js';
import { type RunConfig, resolveRunConfig } from '../src/train/config.js';
import type { MetricsLine } from '../src/train/loop.js';

export const FIXTURE_CONFIG = {
  model: { layers: 2, dModel: 32, heads: 2, maxSeq: 32, positional: 'rotary' }, // as the demo's tiny preset
  task: { kind: 'discrete', vocab: 10, demos: { min: 4, max: 4 }, heldoutTasks: 2, discrete: { families: ['offset', 'permutation'], permutations: 4 } },
  train: { steps: 200, batchSize: 8, evalEvery: 50, evalPrompts: 16, checkpointEvery: 100 },
};

/** Searches the report runs on fixtures: few tasks and prompts, to stay fast on two cores. */
export const FAST_SEARCH = { maxTasks: 4, prompts: 4, queries: 8, permutations: 20 } as const;

export interface FixtureOptions {
  /** Overrides merged into the task config (a different task set, say). */
  readonly task?: Record<string, unknown>;
  /** Steps that get a checkpoint. Default [100, 200]. */
  readonly steps?: readonly number[];
  /** Write metrics.jsonl. Default true. */
  readonly metrics?: boolean;
}

export function makeRun(dir: string, options: FixtureOptions = {}): RunConfig {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'checkpoints'), { recursive: true });
  const cfg = resolveRunConfig({ ...FIXTURE_CONFIG, task: { ...FIXTURE_CONFIG.task, ...options.task } });
  fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  const steps = options.steps ?? [100, 200];
  const lines: MetricsLine[] = [];
  for (let step = 50; step <= Math.max(...steps); step += 50) {
    const t = step / 200;
    const curve = (scale: number) => ({ metric: 'accuracy' as const, byShots: [0, 1, 2, 3, 4].map((k) => round(0.1 + scale * t * (k / 4))), counts: [16, 16, 16, 16, 16] });
    lines.push({ step, trainLoss: round(2.3 - 1.5 * t), lr: 0.003, tokensPerSec: 1000, eval: { train: curve(0.8), heldout: curve(0.3) } });
  }
  if (options.metrics !== false) fs.writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  for (const step of steps) {
    const g = new Graph('float32');
    declareParams(g, cfg.model, step);
    const params = new Map(g.params.map((p) => [p.value.name, p.data as Float32Array]));
    const last = lines.find((l) => l.step === step);
    writeCheckpoint(path.join(dir, 'checkpoints', `step-${String(step).padStart(6, '0')}`), cfg.model, params, {
      step,
      seed: 0,
      task: cfg.task,
      train: { loop: cfg.train },
      metrics: last ? { train: { loss: last.trainLoss }, eval: last.eval } : {},
    });
  }
  return cfg;
}

const round = (v: number) => Math.round(v * 1000) / 1000;

/** Where Chromium usually is, after $CHROMIUM_PATH: Debian's package first. */
const CHROMIUM_PLACES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/snap/bin/chromium',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
];

/** Chromium for the browser tests: $CHROMIUM_PATH, then /usr/bin/chromium, then the other usual places; null when none is there. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.CHROMIUM_PATH) return env.CHROMIUM_PATH; // named: used as given (a wrong path fails the launch, loudly)
  return CHROMIUM_PLACES.find((p) => fs.existsSync(p)) ?? null;
}

/** The Chromium found, or '' when none (see BROWSER_TESTS). */
export const CHROMIUM = findChromium() ?? '';

/**
 * Whether the browser tests run: under CI=true always (without a Chromium they fail, naming the
 * fix); elsewhere only where a Chromium was found, with one line saying how to enable them.
 */
export const BROWSER_TESTS = process.env.CI === 'true' || CHROMIUM !== '';
if (!BROWSER_TESTS) console.log('browser tests skipped: no Chromium found; install Debian\'s chromium or set CHROMIUM_PATH=/path/to/chromium to run them');
/** Debian's Chromium, headless, with nothing that reaches the network. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
