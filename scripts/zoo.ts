/**
 * Builds models/: copies chosen final checkpoints of finished studies (each with its manifest),
 * and writes models/README.md and models/zoo.json from the jobs' own results.
 *
 *   npx tsx scripts/zoo.ts [runs/paper runs/second-wave]
 *
 * The models are listed in scripts/zoo.json: a name, the study and job that trained it, and one
 * line on what it is. A model whose study folder is not on this machine keeps its shipped files
 * and row. Nothing here trains or measures anything: every number comes from the job's
 * result.json, which `tvlens study` wrote.
 */
import fs from 'node:fs';
import path from 'node:path';
import { latestCheckpoint } from '../src/runs/folder.js';
import type { JobResult } from '../src/study/job.js';
import { writeFileAtomic, writeJsonAtomic } from '../src/util/fs.js';

interface ZooEntry {
  readonly name: string;
  readonly job: string;
  readonly what: string;
  /** The study that trained it (its folder name under runs/). Default 'paper'. */
  readonly study?: string;
}

/** One row of models/zoo.json: what the README's table shows, from the job's own result. */
interface ZooRow {
  name: string;
  file: string;
  study: string;
  job: string;
  what: string;
  kind: string;
  lambda: number | null;
  seed: number;
  steps: number;
  metric: string;
  icl: number;
  zeroShot: number;
  higherIsBetter: boolean;
  tvBest: number;
  tvBestLayer: number;
  tvLayer: number;
  tvAtLayer: number;
  weightsSha256: string;
}

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
// Study folders by name: the arguments, or runs/paper and runs/second-wave.
const studies = new Map((process.argv.length > 2 ? process.argv.slice(2) : ['runs/paper', 'runs/second-wave']).map((d) => [path.basename(path.resolve(d)), path.resolve(d)]));
const entries = JSON.parse(fs.readFileSync(path.join(ROOT, 'scripts', 'zoo.json'), 'utf8')) as ZooEntry[];
const out = path.join(ROOT, 'models');
fs.mkdirSync(out, { recursive: true });
const f2 = (v: number | null) => (v === null || !Number.isFinite(v) ? '—' : v.toFixed(2));
const previous = new Map<string, Partial<ZooRow>>(
  fs.existsSync(path.join(out, 'zoo.json')) ? (JSON.parse(fs.readFileSync(path.join(out, 'zoo.json'), 'utf8')) as ZooRow[]).map((r) => [r.name, r]) : [],
);

const index: ZooRow[] = [];
for (const e of entries) {
  const study = e.study ?? 'paper';
  const resultFile = studies.has(study) ? path.join(studies.get(study)!, 'jobs', e.job, 'result.json') : '';
  if (!resultFile || !fs.existsSync(resultFile)) {
    // The study is not on this machine (or the job has not finished): keep the shipped model and its row.
    const old = previous.get(e.name);
    if (!old || !fs.existsSync(path.join(out, `${e.name}.onnx`))) {
      console.error(`zoo: skipped ${e.name}: ${e.job} of ${study} has no result here and no model was shipped`);
      continue;
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(out, `${e.name}.json`), 'utf8')) as { step: number };
    index.push({ ...(old as ZooRow), study, what: e.what, steps: old.steps ?? manifest.step });
    continue;
  }
  const r = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as JobResult;
  const latest = latestCheckpoint(path.join(path.dirname(resultFile), 'run'))!;
  const manifest = JSON.parse(fs.readFileSync(`${latest.file}.json`, 'utf8')) as Record<string, unknown>;
  if (manifest.weightsSha256 !== r.weightsSha256) throw new Error(`${e.job}: the final checkpoint is not the one its result describes`);
  writeFileAtomic(path.join(out, `${e.name}.onnx`), fs.readFileSync(`${latest.file}.onnx`));
  writeJsonAtomic(path.join(out, `${e.name}.json`), { ...manifest, onnx: `${e.name}.onnx`, zoo: { study, job: e.job } });
  index.push({ name: e.name, file: `${e.name}.onnx`, study, job: e.job, what: e.what, kind: r.kind, lambda: r.lambda, seed: r.seed, steps: r.steps, metric: r.metric, icl: r.icl, zeroShot: r.zeroShot, higherIsBetter: r.metric === 'accuracy', tvBest: r.tvBest, tvBestLayer: r.tvBestLayer, tvLayer: r.tvLayer, tvAtLayer: r.tvAtLayer, weightsSha256: r.weightsSha256 });
}
const rows = index.map((r) => {
  const bytes = fs.statSync(path.join(out, r.file)).size;
  return `| \`${r.name}\` | ${r.what} | ${r.kind}${r.lambda !== null ? ` λ=${r.lambda}` : ''} | ${r.seed} | ${r.steps} | ${r.metric} | ${f2(r.icl)} | ${f2(r.zeroShot)} | ${f2(r.tvBest)} (ℓ=${r.tvBestLayer}) | ${f2(r.tvAtLayer)} (ℓ=${r.tvLayer}) | ${(bytes / 1e6).toFixed(2)} MB | \`${r.study}\` \`${r.job}\` |`;
});
writeJsonAtomic(path.join(out, 'zoo.json'), index);
const total = fs.readdirSync(out).filter((f) => f.endsWith('.onnx')).reduce((s, f) => s + fs.statSync(path.join(out, f)).size, 0);
writeFileAtomic(
  path.join(out, 'README.md'),
  `# models

Small trained checkpoints from the reproduction study, ready to open (\`tvlens tv-search models/<name>.onnx\`, or
\`openModel('models/<name>.onnx')\` in the library). Each \`.onnx\` is a plain inference model with its
weights as initializers and TransformerLens-named hooks; the \`.json\` next to it is its manifest (the
full run config, seed, step, metrics and the sha256 of the weights).

Every model was trained by one job of a study, which these commands rerun (finished jobs are kept):

\`\`\`sh
npx tvlens study src/presets/studies/paper.json --out runs/paper               # the first wave
npx tvlens study src/presets/studies/second-wave.json --out runs/second-wave   # the second wave
npx tsx scripts/zoo.ts runs/paper runs/second-wave
\`\`\`

The job id names the group, the varied factors, the run kind (baseline, or TVP-loss from scratch at
λ), and the seed. Numbers come from the job's own analyses (\`runs/<study>/jobs/<job>/result.json\`):
ICL and zero-shot are the eval suite's score at the query on fresh prompts of the train tasks (256
prompts, seed 1234); TV is Hendel et al.'s task vector (θ replaces the zero-shot arrow state), best
layer ℓ chosen on dev queries and scored on test queries; "TV at ℓ" is at the TVP layer (the middle
layer for a baseline). Accuracy for the token tasks (GINC: agreement with the task-known
Bayes-optimal token; RegBench: a symbol the DFA allows); normalised MSE (lower is better) for regression. Layer ℓ: 0 = embeddings, ℓ ≥ 1 = the output of block ℓ.

| model | what | run | seed | steps | metric | ICL | 0-shot | TV best | TV at ℓ | size | study, job |
|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

${(total / 1e6).toFixed(1)} MB in all. \`tests/zoo.test.ts\` opens every model, checks its weights
against its manifest's hash, and re-measures its ICL score on fresh prompts (another seed).
`,
);
console.log(`zoo: ${index.length} models, ${(total / 1e6).toFixed(1)} MB, in ${path.relative(process.cwd(), out)}`);
