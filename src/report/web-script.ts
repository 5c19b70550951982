/**
 * The browser code of a report (src/web/*.ts) as JavaScript to inline. Compiled runs (dist/)
 * read the file tsc wrote next to this one; runs from source (tsx, tests) transpile it with
 * TypeScript. Either way the text is a pure function of the source, so reports stay deterministic.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const cache = new Map<string, string>();

export async function webScript(name: 'explorer'): Promise<string> {
  const hit = cache.get(name);
  if (hit) return hit;
  const here = fileURLToPath(import.meta.url);
  const dir = path.join(path.dirname(here), '..', 'web');
  let js: string;
  const compiled = path.join(dir, `${name}.js`);
  if (here.endsWith('.js') && fs.existsSync(compiled)) {
    js = fs.readFileSync(compiled, 'utf8');
  } else {
    const ts = (await import('typescript')).default;
    const source = fs.readFileSync(path.join(dir, `${name}.ts`), 'utf8');
    js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
  }
  // An inline module script exports nothing; the source map comment points at a file that is not there.
  js = js.replace(/^\/\/# sourceMappingURL=.*$/m, '').replace(/^export \{\};\s*$/m, '').trimEnd() + '\n';
  cache.set(name, js);
  return js;
}
