/**
 * Imports flow one way (README, Architecture): each top-level folder of src/ imports only from folders
 * below it. The ranks, lowest first; folders of one rank do not import each other (training and
 * the backends are siblings: a backend needs no training code, training no backend). Inside a
 * folder, files may import each other, but never in a cycle.
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
  backend: 5, // what runs a model behind Model: the ONNX file as it is, or the graph rebuilt from a checkpoint
  train: 5,
  analysis: 6,
  tvp: 7,
  api: 7,
  eval: 8,
  web: 8, // the browser explorer: inlined into reports with the modules it shares (report/web-script.ts)
  study: 9,
  report: 10, // renders runs, analyses and studies
  cli: 11,
  bench: 11,
  index: 12, // src/index.ts, the public API
};

const SRC = path.resolve(__dirname, '..', 'src');

interface Import {
  readonly from: string;
  readonly to: string;
  /** The importing file and the imported one, relative to src/. */
  readonly file: string;
  readonly target: string;
  readonly spec: string;
  /** Erased at compile time: `import type`, or braces that name types only. */
  readonly typeOnly: boolean;
}

/** Every relative import (and re-export) of every .ts file under src/, as folder → folder. */
function imports(): Import[] {
  const out: Import[] = [];
  const folder = (f: string) => {
    const parts = path.relative(SRC, f).split(path.sep);
    return parts.length === 1 ? (parts[0] === 'index.ts' ? 'index' : 'root') : parts[0];
  };
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/^\s*(import|export)\s+(type\s)?([^;]*?)from\s+'(\.[^']+)'/gms)) {
          const to = path.resolve(path.dirname(p), m[4]).replace(/\.js$/, '.ts');
          const braces = /^\{([^}]*)\}\s*$/.exec(m[3].trim());
          const typesOnly = !!braces && braces[1].split(',').map((n) => n.trim()).filter(Boolean).every((n) => n.startsWith('type '));
          out.push({ from: folder(p), to: folder(to), file: path.relative(SRC, p), target: path.relative(SRC, to), spec: m[4], typeOnly: !!m[2] || typesOnly });
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

  it('has no import cycle between files, inside a folder or across', () => {
    // Runtime imports only: a cycle of type imports is erased by the compiler and harmless.
    const edges = new Map<string, string[]>();
    for (const i of imports()) if (!i.typeOnly) edges.set(i.file, [...(edges.get(i.file) ?? []), i.target]);
    expect(cyclesIn(edges)).toEqual([]);
  });

  it('opens ONNX Runtime sessions only in runtime/, the backends, training (its step and TVP artifacts) and the bench', () => {
    // An analysis, a report, a study or a command runs a model only through Model and its backend.
    const opens = imports()
      .filter((i) => !i.typeOnly && i.target === path.join('runtime', 'session.ts'))
      .map((i) => i.file)
      .filter((f) => /Session\.open\(/.test(fs.readFileSync(path.join(SRC, f), 'utf8')));
    expect(opens).toContain(path.join('backend', 'file.ts')); // the search finds what it looks for
    expect(opens.filter((f) => !/^(backend|train|tvp|bench)\//.test(f))).toEqual([]);
  });

  it('finds a cycle when there is one (the check itself works)', () => {
    const edges = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts', 'd.ts']]]);
    expect(cyclesIn(edges)).toEqual(['a.ts → b.ts → c.ts → a.ts']);
    expect(cyclesIn(new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']]]))).toEqual([]);
  });
});

/** Each cycle of a directed graph that a depth-first search meets, as 'a → b → a'. */
function cyclesIn(edges: ReadonlyMap<string, readonly string[]>): string[] {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const g of edges.get(f) ?? []) {
      if (state.get(g) === 'open') cycles.push([...stack.slice(stack.indexOf(g)), g].join(' → '));
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...edges.keys()].sort()) if (!state.has(f)) visit(f);
  return cycles;
}
