/**
 * The bad-input suites' harness: a sandbox folder, a snapshot of every file in it, and the check
 * that a refusal is clean (exit 1, one line on stderr naming the problem, no stack, nothing in the
 * sandbox changed, added or removed, no temporary or lock file left).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { CliResult } from './cli.js';

/** How a case is counted in the suite's tally (the closing note gives counts by command and class). */
export type CaseClass = 'refusal' | 'recovery' | 'security' | 'overwrite' | 'hang' | 'silent' | 'message';

export interface Sandbox {
  readonly root: string;
  at(...p: string[]): string;
  write(rel: string, data: string | Uint8Array): string;
  snapshot(): Map<string, string>;
  expectRefusal(r: CliResult, want: RegExp, before: Map<string, string>, code?: number): void;
  remove(): void;
}

export function sandbox(prefix: string): Sandbox {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const at = (...p: string[]) => path.join(root, ...p);
  const snapshot = () => {
    const out = new Map<string, string>();
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) {
          out.set(`${path.relative(root, p)}/`, 'dir');
          walk(p);
        } else {
          const st = fs.lstatSync(p);
          out.set(path.relative(root, p), `${st.size}:${st.mtimeMs}:${e.isSymbolicLink() ? fs.readlinkSync(p) : ''}`);
        }
      }
    };
    walk(root);
    return out;
  };
  return {
    root,
    at,
    write(rel, data) {
      fs.mkdirSync(path.dirname(at(rel)), { recursive: true });
      fs.writeFileSync(at(rel), data);
      return at(rel);
    },
    snapshot,
    expectRefusal(r, want, before, code = 1) {
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(r.code, r.stderr).toBe(code);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^tvlens( [\w-]+)?: (error: )?/);
      expect(lines[0]).not.toMatch(/internal error/);
      expect(lines[0]).toMatch(want);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      const after = snapshot();
      expect([...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k), 'changed or new files').toEqual([]);
      expect([...before.keys()].filter((k) => !after.has(k)), 'removed files').toEqual([]);
    },
    remove: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}
