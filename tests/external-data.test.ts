/**
 * ONNX external data resolves inside the model's own folder, never against the current directory:
 * a model whose weights sit in a file beside it runs from anywhere (CLI and library), and one that
 * names an absolute path, a '..' path, a link out of its folder, a missing file, a FIFO or too few
 * bytes is refused in one line naming the model and the file. A tvlens checkpoint whose weights
 * were moved to external data loads (its hash checked on the inlined weights), or says which file
 * is missing, never "weights hash does not match".
 */
import { readModelFile } from '../src/backend/file-open.js';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { FileBackend } from '../src/backend/file.js';
import { decodeModel, loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { InputError } from '../src/errors.js';
import { openModel } from '../src/index.js';
import { makeRun } from './report-fixture.js';
import { runCli } from './support/cli.js';

const TORCH = path.resolve('tests/fixtures/torch-gpt.onnx');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-extdata-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * Writes `src` into `dir` with every float initializer's data moved to external data: `location(name)`
 * names the file each refers to (default weights.bin, written beside the model, offsets in order).
 */
function externalise(src: string, dir: string, location: (name: string) => string = () => 'weights.bin', file = 'model.onnx'): string {
  fs.mkdirSync(dir, { recursive: true });
  const model = decodeModel(new Uint8Array(fs.readFileSync(src)), src);
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer ?? []) {
    if (t.dataType !== 1) continue;
    const data = t.rawData?.length ? Buffer.from(t.rawData) : Buffer.from(Float32Array.from(t.floatData ?? []).buffer);
    t.rawData = new Uint8Array(0);
    t.floatData = [];
    t.dataLocation = onnxProto.onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: location(t.name!) },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(data.length) },
    ];
    chunks.push(data);
    offset += data.length;
  }
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.concat(chunks));
  const out = path.join(dir, file);
  fs.writeFileSync(out, onnxProto.onnx.ModelProto.encode(model).finish());
  return out;
}

const inputIds = [[1, 10, 3, 11, 4, 10, 5, 11]];

describe('ONNX external data', { timeout: 120000 }, () => {
  it('a model with its weights file beside it runs from another directory, through the library, with the same logits', async () => {
    const file = externalise(TORCH, path.join(tmp, 'legit'));
    expect(path.dirname(file)).not.toBe(process.cwd());
    await using inline = await openModel(TORCH);
    await using external = await openModel(file);
    const [a, b] = [await inline.run(inputIds), await external.run(inputIds)];
    expect(Array.from(b.data)).toEqual(Array.from(a.data));
  });

  it('the CLI opens it from another directory too', async () => {
    const file = externalise(TORCH, path.join(tmp, 'legit-cli'));
    const r = await runCli(['hooks', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('is read by tvlens from the model folder and never by ONNX Runtime from the current directory', () => {
    // package.json exists in the current directory (the repository), not beside the model.
    const file = externalise(TORCH, path.join(tmp, 'cwd'), () => 'package.json');
    fs.rmSync(path.join(tmp, 'cwd', 'package.json'), { force: true });
    expect(fs.existsSync('package.json')).toBe(true);
    expect(() => readModelFile(file)).toThrow(/keeps its data in 'package\.json', which does not exist beside the model/);
  });

  const refused: [string, (dir: string) => string, RegExp][] = [
    ['an absolute path', () => '/etc/passwd', /an absolute path: external data must lie in the model's own folder/],
    ['a Windows absolute path', () => 'C:\\secrets\\w.bin', /an absolute path/],
    ['a path up and out', () => '../outside.bin', /leaves the model's folder \('\.\.'\)/],
    ['a path up and back in', () => 'sub/../../outside.bin', /leaves the model's folder/],
    [
      'a symlink leading out of the folder',
      (dir) => {
        fs.symlinkSync(path.join(tmp, 'outside.bin'), path.join(dir, 'link.bin'));
        return 'link.bin';
      },
      /a link that leads out of the model's folder/,
    ],
    [
      'a FIFO',
      (dir) => {
        execFileSync('mkfifo', [path.join(dir, 'pipe.bin')]);
        return 'pipe.bin';
      },
      /which is not a regular file/,
    ],
    ['an empty location', () => '', /names no file/],
  ];
  for (const [what, make, message] of refused) {
    it(`refuses ${what}, in one line naming the model, through FileBackend, the library and the CLI`, async () => {
      fs.writeFileSync(path.join(tmp, 'outside.bin'), Buffer.alloc(1 << 16));
      const dir = path.join(tmp, what.replace(/\W+/g, '-'));
      fs.mkdirSync(dir, { recursive: true });
      const location = make(dir);
      const file = externalise(TORCH, dir, () => location);
      expect(() => readModelFile(file)).toThrow(InputError);
      expect(() => readModelFile(file)).toThrow(message);
      await expect(openModel(file)).rejects.toThrow(message);
      const r = await runCli(['hooks', file]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(file);
    });
  }

  it('a symlink that stays inside the folder is followed', async () => {
    const dir = path.join(tmp, 'inner-link');
    const file = externalise(TORCH, dir, () => 'link.bin');
    fs.symlinkSync('weights.bin', path.join(dir, 'link.bin'));
    await using m = await openModel(file);
    expect(m.kind).toBe('foreign');
  });

  it('refuses a weights file shorter than the bytes asked for', () => {
    const dir = path.join(tmp, 'short');
    const file = externalise(TORCH, dir);
    fs.truncateSync(path.join(dir, 'weights.bin'), 100);
    expect(() => readModelFile(file)).toThrow(/bytes \d+\.\.\d+ asked for, but the file has 100/);
  });

  it('a tvlens checkpoint with external data loads; without its weights file it says which file is missing', () => {
    const run = path.join(tmp, 'ckpt-run');
    makeRun(run, { steps: [100], metrics: false });
    const ckpt = path.join(run, 'checkpoints', 'step-000100.onnx');
    const before = loadCheckpoint(ckpt).manifest.weightsSha256;
    const moved = path.join(tmp, 'ckpt-moved');
    externalise(ckpt, moved, () => 'weights.bin', 'step-000100.onnx');
    fs.copyFileSync(ckpt.replace(/\.onnx$/, '.json'), path.join(moved, 'step-000100.json'));
    expect(loadCheckpoint(path.join(moved, 'step-000100.onnx')).manifest.weightsSha256).toBe(before);
    fs.rmSync(path.join(moved, 'weights.bin'));
    expect(() => loadCheckpoint(path.join(moved, 'step-000100.onnx'))).toThrow(/keeps its data in 'weights\.bin', which does not exist beside the model/);
    expect(() => loadCheckpoint(path.join(moved, 'step-000100.onnx'))).not.toThrow(/hash/);
  });
});
