/**
 * The browser code of a report (src/web/*.ts) as JavaScript to inline. Compiled runs (dist/)
 * read the file tsc wrote next to this one; runs from source (tsx, tests) transpile it with
 * TypeScript. Either way the text is a pure function of the source, so reports stay deterministic.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const cache = new Map<string, string>();

/** Modules of src/ the browser code may import: each is inlined where it is imported (they import nothing at run time). */
const SHARED = ['tasks/score', 'web/explorer-parts'];

export async function webScript(name: 'explorer'): Promise<string> {
  const hit = cache.get(name);
  if (hit) return hit;
  // A shared module's own imports (score.ts's DFA and HMM scorers) are not needed by the page: they
  // become functions that say so, instead of imports the browser cannot load from file://.
  const stubImports = (js: string, mod: string) =>
    js.replace(/^import \{([^}]*)\} from '\.\/([\w/-]+)\.js';\s*$/gm, (_, names: string, from: string) =>
      names.split(',').map((n) => n.trim()).filter(Boolean).map((n) => `const ${n.split(/\s+as\s+/).pop()} = () => { throw new Error('${from} (imported by ${mod}) is not part of the report'); };`).join('\n'));
  const shared = new Map(await Promise.all(SHARED.map(async (m) => [m, stubImports((await moduleJs(m)).replace(/^export (?=(async )?function |const |class )/gm, ''), m)] as const)));
  // `import { … } from '../tasks/score.js'` becomes that module's code, its exports plain declarations.
  const js = (await moduleJs(`web/${name}`)).replace(/^import \{[^}]*\} from '\.\.\/([\w/-]+)\.js';\s*$/gm, (_, mod: string) => {
    const code = shared.get(mod);
    if (code === undefined) throw new Error(`the browser code imports ${mod}, which web-script.ts does not inline (SHARED)`);
    return `// ${mod}.ts, inlined\n${code}`;
  });
  cache.set(name, js);
  return js;
}

/** A module of src/ as JavaScript: the file tsc wrote (compiled runs), else transpiled from its source. */
async function moduleJs(mod: string): Promise<string> {
  const here = fileURLToPath(import.meta.url);
  const src = path.join(path.dirname(here), '..');
  let js: string;
  const compiled = path.join(src, `${mod}.js`);
  if (here.endsWith('.js') && fs.existsSync(compiled)) {
    js = fs.readFileSync(compiled, 'utf8');
  } else {
    const ts = (await import('typescript')).default;
    const source = fs.readFileSync(path.join(src, `${mod}.ts`), 'utf8');
    js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
  }
  // An inline module script exports nothing; the source map comment points at a file that is not there.
  return js.replace(/^\/\/# sourceMappingURL=.*$/m, '').replace(/^export \{\};\s*$/m, '').trimEnd() + '\n';
}
