/**
 * Puts the studies' numbers into the docs, so that every number there is a study's:
 *   - README.md, between `<!-- study:begin -->` and `<!-- study:end -->`: the short form of each
 *     wave (the newest first): a verdict per claim, every family's seeds, claim 1 lever by lever;
 *   - docs/science.md, whole: every claim table of each wave (their reproduction.md).
 * From the committed reports/studies/<study>/{summary.json,reproduction.md}; computes nothing new.
 *   npx tsx scripts/readme-tables.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { summaryMarkdown } from '../src/study/report.js';
import type { StudySummary } from '../src/study/results.js';
import { writeFileAtomic } from '../src/util/fs.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const WAVES = [
  { study: 'second-wave', title: 'Second wave', spec: 'src/presets/studies/second-wave.json', script: 'scripts/second-wave.sh' },
  { study: 'paper', title: 'First wave', spec: 'src/presets/studies/paper.json', script: 'scripts/reproduce.sh' },
].filter((w) => fs.existsSync(path.join(ROOT, 'reports', 'studies', w.study, 'summary.json')));

const summary = (study: string) => JSON.parse(fs.readFileSync(path.join(ROOT, 'reports', 'studies', study, 'summary.json'), 'utf8')) as StudySummary;

const readme = path.join(ROOT, 'README.md');
const text = fs.readFileSync(readme, 'utf8');
const [begin, end] = ['<!-- study:begin -->', '<!-- study:end -->'];
const i = text.indexOf(begin);
const j = text.indexOf(end);
if (i < 0 || j < i) throw new Error(`README.md lacks the markers ${begin} … ${end}`);
const short = WAVES.map((w) => `#### ${w.title}\n\n${summaryMarkdown(summary(w.study))}`).join('\n');
writeFileAtomic(readme, `${text.slice(0, i + begin.length)}\n${short}\n${text.slice(j)}`);

const docs = [
  '# The science: every claim table',
  '',
  'Made by `npx tsx scripts/readme-tables.ts` from `reports/studies/<study>/`; the page with the charts is `reports/reproduction.html`.',
  '',
  ...WAVES.flatMap((w) => [`## ${w.title}: \`${w.spec}\``, '', `Rerun (resumable): \`${w.script}\`.`, '', fs.readFileSync(path.join(ROOT, 'reports', 'studies', w.study, 'reproduction.md'), 'utf8').trim(), '']),
].join('\n');
fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
writeFileAtomic(path.join(ROOT, 'docs', 'science.md'), docs);
console.log(`README.md and docs/science.md: ${WAVES.map((w) => w.study).join(', ')}`);
