/**
 * Imports flow one way (README, Architecture): each top-level folder of src/ imports only from folders
 * below it. The ranks, lowest first; folders of one rank do not import each other (training and
 * analysis are siblings: analysis needs no training code, checkpoints neither).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const RANKS: Readonly<Record<string, number>> = {
  root: 0, // src/errors.ts, src/version.ts
  util: 1,
  graph: 2,
  model: 3,
  tasks: 3,
  text: 4, // tokenizers and text tasks (over tasks' prompt records)
  runtime: 3,
  checkpoint: 4,
  runs: 4, // reading run folders
  train: 5,
  analysis: 5,
  tvp: 6,
  api: 6,
  eval: 7,
  web: 7, // the browser explorer: inlined into reports with the modules it shares (report/web-script.ts)
  study: 8,
  report: 9, // renders runs, analyses and studies
  cli: 10,
  bench: 10,
  index: 11, // src/index.ts, the public API
};

const SRC = path.resolve(__dirname, '..', 'src');

/** Every relative import (and re-export) of every .ts file under src/, as folder → folder. */
function imports(): { from: string; to: string; file: string; spec: string; typeOnly: boolean }[] {
  const out: { from: string; to: string; file: string; spec: string; typeOnly: boolean }[] = [];
  const folder = (f: string) => {
    const parts = path.relative(SRC, f).split(path.sep);
    return parts.length === 1 ? (parts[0] === 'index.ts' ? 'index' : 'root') : parts[0];
  };
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/^\s*(import|export)\s+(type\s)?[^;]*?from\s+'(\.[^']+)'/gms)) {
          out.push({ from: folder(p), to: folder(path.resolve(path.dirname(p), m[3])), file: path.relative(SRC, p), spec: m[3], typeOnly: !!m[2] });
        }
      }
    }
  };
  walk(SRC);
  return out;
}

describe('the import graph', () => {
  it('names a rank for every top-level folder of src/', () => {
    const folders = fs.readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'presets').map((e) => e.name);
    expect(folders.filter((f) => !(f in RANKS))).toEqual([]);
  });

  it('has no upward or sideways import between top-level folders', () => {
    const bad = imports()
      .filter((i) => i.from !== i.to)
      // The browser explorer's type imports are erased; its value imports are inlined by report/web-script.ts.
      .filter((i) => !(i.from === 'web' && i.typeOnly))
      .filter((i) => RANKS[i.to] >= RANKS[i.from])
      .map((i) => `${i.file} imports ${i.spec} (${i.from} → ${i.to})`);
    expect(bad).toEqual([]);
  });
});
