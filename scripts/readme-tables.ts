/**
 * Puts the study's claim tables (reports/studies/paper/reproduction.md) into README.md, between the
 * markers `<!-- study:begin -->` and `<!-- study:end -->`, so the README's numbers are the study's.
 *   npx tsx scripts/readme-tables.ts
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const readme = path.join(ROOT, 'README.md');
const tables = fs.readFileSync(path.join(ROOT, 'reports', 'studies', 'paper', 'reproduction.md'), 'utf8').trim();
const text = fs.readFileSync(readme, 'utf8');
const [begin, end] = ['<!-- study:begin -->', '<!-- study:end -->'];
const i = text.indexOf(begin);
const j = text.indexOf(end);
if (i < 0 || j < i) throw new Error(`README.md lacks the markers ${begin} … ${end}`);
fs.writeFileSync(`${readme}.tmp`, `${text.slice(0, i + begin.length)}\n${tables.replace(/^#### /gm, '#### ')}\n${text.slice(j)}`);
fs.renameSync(`${readme}.tmp`, readme);
console.log('README.md: study tables updated');
