import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { help, parse } from '../src/cli/command.js';
import { localityCommand } from '../src/cli/locality.js';
import { patchCommand } from '../src/cli/patch.js';
import { tvSearchCommand } from '../src/cli/tv-search.js';
import type { Command } from '../src/cli/command.js';
import { handModel, handTaskConfig } from './support/tv-hand-model.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-tv-cli-'));
const { cfg, params } = handModel();
writeCheckpoint(path.join(dir, 'checkpoints', 'step-000050'), cfg, params, { step: 50, seed: 0, task: handTaskConfig(), metrics: {} });
const ckpt = path.join(dir, 'checkpoints', 'step-000050.onnx');
afterAll(() => fs.rmSync(dir, { recursive: true }));

async function runJson(cmd: Command, argv: string[]): Promise<Record<string, unknown>> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    const { values, positionals } = parse(cmd, [...argv, '--json']);
    await cmd.run(values, positionals);
    return JSON.parse(log.mock.calls.at(-1)![0] as string);
  } finally {
    log.mockRestore();
  }
}

describe('the tv-search, patch and locality commands', { timeout: 120000 }, () => {
  it('print JSON that records the model, the convention and every layer', async () => {
    const tv = await runJson(tvSearchCommand, [ckpt, '--prompts', '4', '--queries', '8', '--sets', '1+2', '--out', path.join(dir, 'tv.json')]);
    expect(tv).toMatchObject({ analysis: 'tv-search', model: { step: 50 } });
    expect((tv.average as { curve: unknown[] }).curve).toHaveLength(4);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'tv.json'), 'utf8')).analysis).toBe('tv-search');
    const p = await runJson(patchCommand, [ckpt, '--prompts', '2', '--tasks', '2', '--site', 'z']);
    expect(p).toMatchObject({ analysis: 'patch', direction: 'denoising', rows: ['blocks.0.attn.hook_z', 'blocks.1.attn.hook_z', 'blocks.2.attn.hook_z'] });
    const series = await runJson(localityCommand, [dir, '--prompts', '4', '--queries', '8', '--permutations', '10']);
    expect(series).toMatchObject({ analysis: 'locality-table', kind: 'series' });
    expect((series.rows as { step: number }[]).map((r) => r.step)).toEqual([50]);
  });

  it('exit non-zero with one line naming the valid layers, or saying the file is not a model', async () => {
    const cli = (...args: string[]) => spawnSync('npx', ['tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', cwd: path.resolve(__dirname, '..') });
    const bad = cli('tv-search', ckpt, '--layers', '0-7', '--prompts', '2', '--queries', '4');
    expect(bad.status).toBe(1);
    const line = bad.stderr.split('\n').filter((l) => l.startsWith('tvlens'));
    expect(line).toHaveLength(1);
    expect(line[0]).toMatch(/residual layer 4 is out of range: .* valid layers are 0\.\.3/);
    fs.writeFileSync(path.join(dir, 'junk.onnx'), 'not a model');
    fs.writeFileSync(path.join(dir, 'junk.json'), JSON.stringify({ format: 'tvlens-checkpoint/1', onnx: 'junk.onnx', model: {}, weightsSha256: '' }));
    const { values, positionals } = parse(patchCommand, [path.join(dir, 'junk.onnx')]);
    await expect(patchCommand.run(values, positionals)).rejects.toThrow(/junk\.onnx is not an ONNX model/);
    expect(help(localityCommand)).toMatch(/--permutations/);
  });
});
