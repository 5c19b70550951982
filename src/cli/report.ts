/** `tvlens report`: one self-contained HTML report over runs, checkpoints and analysis outputs. */
import fs from 'node:fs';
import path from 'node:path';
import { holdsModel } from '../backend/model-folder.js';
import { ConfigError } from '../errors.js';
import { writeReport } from '../report/index.js';
import { choice, command, flag, int, required, seed, text } from './command.js';
import { checkOutputFile, checkShots, isOwnHtml } from './limits.js';
import { readManifest } from '../checkpoint/checkpoint.js';
import { runCheckpoints } from '../runs/folder.js';
import { resolveTaskConfig } from '../tasks/index.js';
import { PROMPT_FORMATS } from '../text/tasks.js';

export const reportCommand = command({
  name: 'report',
  summary: 'write one self-contained HTML report (charts and an in-browser explorer) over runs and analyses',
  usage: 'tvlens report <run folder | checkpoint.onnx | analysis.json> [more …] --out reports/<name>.html',
  options: {
    out: text('the HTML file to write'),
    title: text('the page title (default: the model names)'),
    'no-analyse': flag('draw only the analysis outputs given; run no task-vector search, locality or patching here'),
    'no-series': flag('do not analyse every checkpoint of a run (no emergence section)'),
    'no-explorer': flag('leave out the in-browser explorer (the report shrinks by about 5 MB)'),
    prompts: int('searches run here: demo prompts per task that θ averages over (default 16)'),
    queries: int('searches run here: zero-shot queries per task, half dev, half test (default 64)', { min: 2 }),
    shots: int('searches run here: demos per prompt (default: the task config’s most)', { min: 0 }),
    seed: seed('searches run here: seed of the prompts (default 0)'),
    tasks: int('searches run here: at most this many tasks (default: all; patching: 8)'),
    permutations: int('locality run here: label permutations of the separability test (default 200)'),
    task: text('model folders: the text tasks to analyse them on (shipped names, or a JSON/JSONL file of {"x", "y"} pairs), comma-separated'),
    format: choice("model folders: the prompt format, 'hendel' (x -> y lines) or 'todd' (Q: x / A: y)", PROMPT_FORMATS, 'hendel'),
  },
  async run(values, positionals) {
    if (positionals.length === 0) throw new ConfigError('give at least one run folder, checkpoint or analysis output. See tvlens report --help');
    const out = required(values.out, 'out');
    if (!out.endsWith('.html')) throw new ConfigError(`expected a .html file, got '${out}'`, '--out');
    checkOutputFile(out, '--out', isOwnHtml);
    const { prompts, queries, shots, seed, tasks: maxTasks, permutations } = values;
    const search = Object.fromEntries(Object.entries({ prompts, queries, shots, seed, maxTasks, permutations }).filter(([, v]) => v !== undefined));
    if (shots !== undefined) for (const p of positionals) checkShotsOf(p, shots);
    // Text tasks are for model folders; on runs and checkpoints (their own task configs) they would be ignored.
    if (values.task !== undefined && !positionals.some(holdsModel)) throw new ConfigError('applies to model folders (model.onnx with tokenizer.json), and none is given', '--task');
    const summary = await writeReport(positionals, out, {
      title: values.title,
      analyse: !values['no-analyse'],
      series: !values['no-series'],
      explorer: !values['no-explorer'],
      search,
      text: values.task === undefined ? undefined : { task: values.task.split(','), format: values.format },
      command: reportCommandLine(positionals, values),
    });
    if (values.json) console.log(JSON.stringify(summary));
    else {
      const mb = (summary.bytes / 1e6).toFixed(1);
      console.log(`wrote ${path.relative(process.cwd(), summary.file) || summary.file} (${mb} MB; sections: ${summary.sections.join(', ')})`);
      for (const f of summary.findings) console.log(f);
      if (summary.problems.length) console.log(`${summary.problems.length} problem(s) noted at the top of the report`);
    }
  },
});

/** --shots against the context of a checkpoint, or of a run folder's checkpoints; other inputs are the report's to judge. */
function checkShotsOf(input: string, shots: number): void {
  let files: string[];
  try {
    files = fs.statSync(input).isDirectory() ? runCheckpoints(input).slice(-1) : input.endsWith('.onnx') || input.endsWith('.json') ? [input] : [];
  } catch {
    return;
  }
  for (const f of files) {
    let m;
    try {
      m = readManifest(f);
    } catch {
      continue; // not a checkpoint (an analysis output, say)
    }
    checkShots(resolveTaskConfig(m.task), shots, m.model.maxSeq);
  }
}

/** The command line as a user would retype it (options in a fixed order, so reports stay deterministic). */
function reportCommandLine(positionals: readonly string[], values: object): string {
  const opts = Object.entries(values)
    .filter(([k, v]) => v !== undefined && v !== false && k !== 'json')
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => (v === true ? `--${k}` : `--${k} ${v}`));
  return ['tvlens report', ...positionals, ...opts].join(' ');
}
