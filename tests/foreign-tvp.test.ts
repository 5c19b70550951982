/**
 * TVP-loss on a foreign model (tvp/foreign.ts): a PyTorch-exported model folder fine-tuned on text
 * tasks through standard-op training artifacts, written back as an ONNX model with the same inputs,
 * outputs and weight names. A few steps only: the full run (scripts/foreign-tvp.sh) and its numbers
 * are in docs/analyses.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openModel } from '../src/api/model.js';
import { decodeModel } from '../src/checkpoint/checkpoint.js';
import { runForeignTvp } from '../src/tvp/foreign.js';
import { runCli } from './support/cli.js';
import { GPT2 } from './support/decoders.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-ftvp-'));
const io = (file: string) => {
  const m = decodeModel(new Uint8Array(fs.readFileSync(file)), file);
  return { inputs: m.graph!.input!.map((v) => v.name), outputs: m.graph!.output!.map((v) => v.name), weights: m.graph!.initializer!.map((t) => t.name) };
};

describe('tvp --from <model folder>', () => {
  it('fine-tunes through the artifacts and writes a model with the same inputs, outputs and weights', async () => {
    const out = path.join(tmp(), 'tuned');
    const losses: number[] = [];
    const s = await runForeignTvp({ from: path.join(GPT2, 'model.onnx'), out, tasks: ['antonyms'], steps: 4, batch: 4, lr: 1e-3, onStep: (_s, _t, l) => losses.push(l) });
    expect(losses).toHaveLength(4);
    expect(losses.every(Number.isFinite)).toBe(true);
    for (const f of ['artifacts/training_model.onnx', 'artifacts/optimizer_model.onnx', 'model.onnx', 'tokenizer.json', 'config.json', 'tvp-summary.json']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    expect(io(path.join(out, 'model.onnx'))).toEqual(io(path.join(GPT2, 'model.onnx')));
    expect(s.layer).toBe(2);
    expect(s.before.icl.mean).toBeGreaterThan(s.before.zeroShot);
    // The weights moved, and the written folder opens as a model folder again.
    await using before = await openModel(GPT2);
    await using after = await openModel(out);
    const ids = [after.tokenize('example:hot->')];
    const [a, b] = [await before.run(ids), await after.run(ids)];
    expect(Array.from(a.data as Float32Array).some((x, i) => x !== (b.data as Float32Array)[i])).toBe(true);
  });

  it('refuses an --out folder holding files it did not write, in one line', async () => {
    const out = tmp();
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const r = await runCli(['tvp', '--from', GPT2, '--out', out, '--steps', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds files tvlens did not write \(notes\.txt\)/);
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('mine');
  });
});
