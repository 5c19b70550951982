/**
 * Puts the studies' numbers into the docs, so that every number there is a study's:
 *   - README.md, between `<!-- study:begin -->` and `<!-- study:end -->`: the short form of the
 *     newest wave: a verdict per claim and every family's seeds;
 *   - docs/science.md: every claim table of the first wave (reports/studies/paper/reproduction.md)
 *     between `<!-- study:begin -->` and `<!-- study:end -->`, and of the second wave
 *     (reports/studies/second-wave/reproduction.md) between `<!-- study2:begin -->` and `<!-- study2:end -->`.
 * From the committed reports/studies/<study>/summary.json (each reproduction.md is rendered again
 * from it, with today's verdict rules); computes nothing new.
 *   npx tsx scripts/readme-tables.ts
 */
import fs from 'node:fs';
import path from 'node:path';
import { summaryMarkdown, writeReproductionMarkdown } from '../src/study/report.js';
import type { StudySummary } from '../src/study/results.js';
import { writeFileAtomic } from '../src/util/fs.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const studyFile = (study: string, file: string) => path.join(ROOT, 'reports', 'studies', study, file);
const WAVES = [
  { study: 'second-wave', title: 'Second wave', tag: 'study2' },
  { study: 'paper', title: 'First wave', tag: 'study' },
].filter((w) => fs.existsSync(studyFile(w.study, 'summary.json')));

/** `text` with the part between `<!-- tag:begin -->` and `<!-- tag:end -->` replaced by `body`. */
function between(text: string, tag: string, body: string, file: string): string {
  const [begin, end] = [`<!-- ${tag}:begin -->`, `<!-- ${tag}:end -->`];
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${file} lacks the markers ${begin} … ${end}`);
  return `${text.slice(0, i + begin.length)}\n${body.trim()}\n${text.slice(j)}`;
}

const readme = path.join(ROOT, 'README.md');
// The README carries the newest wave's short form; every wave's full tables are in docs/science.md.
const newest = WAVES[0];
const short = `#### ${newest.title}\n\n${summaryMarkdown(JSON.parse(fs.readFileSync(studyFile(newest.study, 'summary.json'), 'utf8')) as StudySummary)}`;
writeFileAtomic(readme, between(fs.readFileSync(readme, 'utf8'), 'study', short, 'README.md'));

const science = path.join(ROOT, 'docs', 'science.md');
let text = fs.readFileSync(science, 'utf8');
for (const w of WAVES) {
  // Rendered again from the summary, so that every wave is judged by today's verdict rules.
  const summary = JSON.parse(fs.readFileSync(studyFile(w.study, 'summary.json'), 'utf8')) as StudySummary;
  const markdown = writeReproductionMarkdown(path.dirname(studyFile(w.study, 'summary.json')), summary);
  text = between(text, w.tag, fs.readFileSync(markdown, 'utf8'), 'docs/science.md');
}
writeFileAtomic(science, text);
console.log(`README.md and docs/science.md: ${WAVES.map((w) => w.study).join(', ')}`);
