/**
 * Puts the studies' claim tables into README.md, so the README's numbers are the studies': the
 * first wave's (reports/studies/paper/reproduction.md) between `<!-- study:begin -->` and
 * `<!-- study:end -->`, the second wave's (reports/studies/second-wave/reproduction.md) between
 * `<!-- study2:begin -->` and `<!-- study2:end -->` where the README has those markers.
 *   npx tsx scripts/readme-tables.ts
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const readme = path.join(ROOT, 'README.md');
let text = fs.readFileSync(readme, 'utf8');
for (const [study, tag] of [['paper', 'study'], ['second-wave', 'study2']]) {
  const file = path.join(ROOT, 'reports', 'studies', study, 'reproduction.md');
  const [begin, end] = [`<!-- ${tag}:begin -->`, `<!-- ${tag}:end -->`];
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i || !fs.existsSync(file)) {
    console.log(`README.md: no ${begin} … ${end} markers or no ${path.relative(ROOT, file)}; skipped`);
    continue;
  }
  const tables = fs.readFileSync(file, 'utf8').trim();
  text = `${text.slice(0, i + begin.length)}\n${tables}\n${text.slice(j)}`;
  console.log(`README.md: ${study} tables updated`);
}
fs.writeFileSync(`${readme}.tmp`, text);
fs.renameSync(`${readme}.tmp`, readme);
