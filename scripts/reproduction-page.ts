/**
 * Writes reports/reproduction.html from the committed summaries of one or more studies (newest
 * first), so one page carries every wave of the reproduction. Computes nothing new.
 *   npx tsx scripts/reproduction-page.ts reports/studies/second-wave/summary.json reports/studies/paper/summary.json
 */
import fs from 'node:fs';
import path from 'node:path';
import { reproductionHtml } from '../src/report/reproduction.js';
import type { StudySummary } from '../src/study/results.js';
import { writeFileAtomic } from '../src/util/fs.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const files = process.argv.slice(2);
if (files.length === 0) throw new Error('usage: reproduction-page.ts <summary.json>…');
const studies = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as StudySummary);
const out = path.join(ROOT, 'reports', 'reproduction.html');
writeFileAtomic(out, reproductionHtml(...studies));
console.log(`${path.relative(ROOT, out)}: ${studies.map((s) => `${s.study} (${s.finished} of ${s.jobs} jobs)`).join(', ')}`);
