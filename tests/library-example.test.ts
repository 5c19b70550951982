/**
 * The README's library example, run as it is written: first from the repository's sources, then
 * as a user runs it, from a project outside the repository that installs tvlens from a tarball
 * made by `npm pack`, type-checks the example with the user's own tsconfig, and runs the compiled
 * JavaScript. The install is offline: the project's lockfile is built from this repository's, so
 * `npm ci --offline` takes every dependency from the npm cache that installed this repository.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { handModel, handTaskConfig } from './support/tv-hand-model.js';

const ROOT = path.resolve(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-library-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const hand = handModel();
writeCheckpoint(path.join(dir, 'hand'), hand.cfg, hand.params, { step: 0, seed: 0, task: handTaskConfig(), metrics: {} });
const ckpt = path.join(dir, 'hand.onnx');

/** The ```ts block after the README's library-example marker. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('<!-- library-example');
  expect(at, 'the README marks its library example').toBeGreaterThan(0);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(m, 'a ```ts block follows the marker').not.toBeNull();
  return m![1];
}

/** What the example prints: the shapes, the search and the grid. */
function expectExampleOutput(out: string): void {
  expect(out).toMatch(/^3 blocks, d_model 32, hooks: hook_embed, hook_pos_embed, blocks\.0\.hook_resid_pre, …$/m);
  expect(out).toMatch(/^logits \[ 1, 6, 10 \] resid \[ 1, 6, 32 \] last position \[ [-\d.e]+, [-\d.e]+, [-\d.e]+ \]$/m);
  expect(out).toMatch(/^steered logits \[ 1, 6, 10 \]$/m);
  expect(out).toMatch(/^best layer [0-3] test score [01]\.\d\d$/m);
  expect(out).toMatch(/^3 × 18 cells, clean logit diff /m);
}

describe('the README library example', () => {
  it('runs from the repository sources and prints shapes, the best layer and a patching grid', () => {
    const file = path.join(dir, 'example-src.mts'); // an ES module outside any package.json
    fs.writeFileSync(file, readmeExample().replace("from 'tvlens'", `from ${JSON.stringify(path.join(ROOT, 'src', 'index.ts'))}`));
    const r = spawnSync(process.execPath, ['--import', 'tsx', file, ckpt], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expectExampleOutput(r.stdout);
  }, 120000);

  it('type-checks and runs in a project that installs tvlens from a packed tarball', () => {
    // Build into a package folder of its own, not the repository's dist/ (tsc emits even where
    // another file has a type error; the packed files are what is tested), then pack it.
    const pkg = path.join(dir, 'pkg');
    fs.mkdirSync(pkg);
    for (const f of ['package.json', 'README.md']) fs.copyFileSync(path.join(ROOT, f), path.join(pkg, f));
    fs.cpSync(path.join(ROOT, 'src', 'presets'), path.join(pkg, 'src', 'presets'), { recursive: true });
    spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ROOT, '--outDir', path.join(pkg, 'dist')], { cwd: ROOT, encoding: 'utf8' });
    const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: pkg, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { filename: string; files: { path: string }[] }[];
    const files = packed[0].files.map((f) => f.path);
    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/src/index.d.ts');
    expect(files.filter((f) => f.startsWith('dist/tests/') || f.startsWith('tests/'))).toEqual([]);
    const tgz = path.join(dir, packed[0].filename);

    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
    const self = lock.packages[''];
    const spec = `file:${tgz}`;
    const packages: Record<string, unknown> = {
      '': { name: 'app', dependencies: { tvlens: spec } },
      'node_modules/tvlens': {
        version: self.version,
        resolved: spec,
        integrity: `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64')}`,
        dependencies: self.dependencies,
        engines: self.engines,
        bin: self.bin,
      },
    };
    for (const [k, v] of Object.entries(lock.packages)) if (k !== '' && !v.dev && k.startsWith('node_modules/')) packages[k] = v;
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { tvlens: spec } }, null, 2));
    fs.writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }, null, 2));
    // --ignore-scripts: onnxruntime-node's postinstall would fetch CUDA binaries; its CPU binaries ship in the package.
    execFileSync('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, stdio: 'pipe' });

    fs.writeFileSync(path.join(app, 'example.ts'), readmeExample());
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'ESNext.Disposable'],
        strict: true,
        skipLibCheck: true, // as `tsc --init` writes it: onnx-proto's own .d.ts needs protobufjs's Long in scope
        types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
        outDir: 'out',
      },
      files: ['example.ts'],
    };
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app, encoding: 'utf8' });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    const run = spawnSync(process.execPath, [path.join(app, 'out', 'example.js'), ckpt], { cwd: app, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expectExampleOutput(run.stdout);
  }, 300000);
});
