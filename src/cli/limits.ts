/**
 * Checks the analysis commands make once the model is open and before any work: that the task
 * fits the model, that prompts fit its context, and that the prompts fit in memory. Each refuses
 * with one line naming the flag.
 */
import fs from 'node:fs';
import { ConfigError, InputError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { dMlpOf } from '../model/config.js';
import { type TaskConfig, promptLength, taskIO } from '../tasks/index.js';
import { analysisMemory, checkMemory } from '../util/memory.js';

/** What an analysis's memory estimate reads of a command's values. */
interface SizeValues {
  readonly prompts?: number;
  readonly dummies?: number;
  readonly queries?: number;
  readonly tasks?: number;
  readonly shots?: number;
  readonly 'max-memory'?: number;
}

/** A task config given with --task must produce inputs and outputs the checkpoint's model takes. */
export function checkTaskFits(task: TaskConfig, model: ModelConfig, file: string): void {
  const io = taskIO(task);
  if (io.input !== model.input) {
    throw new ConfigError(`the task's prompts are ${io.input === 'tokens' ? 'token ids' : 'vectors'}, but ${file} takes ${model.input === 'tokens' ? 'token ids' : 'vectors'}: give the checkpoint's own kind of task`, '--task');
  }
  if (io.input === 'tokens' && io.vocabSize !== model.vocab) {
    throw new ConfigError(`the task's prompts use a vocabulary of ${io.vocabSize} token ids, but ${file} was trained on ${model.vocab}: give a task config with the checkpoint's vocab`, '--task');
  }
  if (io.input === 'vectors' && (io.dIn !== model.dIn || io.outDim !== model.dOut)) {
    throw new ConfigError(`the task's vectors are ${io.dIn} wide in, ${io.outDim} out, but ${file} takes ${model.dIn} and gives ${model.dOut}`, '--task');
  }
}

/** The most demos whose prompts fit in `maxSeq` positions (−1 if not even a zero-shot prompt fits). */
export function mostDemos(task: TaskConfig, maxSeq: number): number {
  const [zero, one] = [promptLength(task, 0), promptLength(task, 1)];
  return zero > maxSeq ? -1 : Math.floor((maxSeq - zero) / (one - zero));
}

/**
 * `--shots`/`--demos` (`flag`) against a model's context: refuses prompts longer than the model was
 * built for, whatever its positional scheme (a rotary model would run them, on positions it never saw).
 */
export function checkShots(task: TaskConfig, shots: number | undefined, maxSeq: number | null | undefined, flag = '--shots'): void {
  const k = shots ?? task.demos.max;
  if (!maxSeq) return;
  const seq = promptLength(task, k);
  if (seq > maxSeq) {
    throw new ConfigError(`prompts with ${k} demos are ${seq} positions long, more than the model's context of ${maxSeq}; the most that fit is ${mostDemos(task, maxSeq)}`, flag);
  }
}

/**
 * The memory an analysis over `values`' prompts would take (tasks × (prompts × dummies + queries)
 * prompts, every layer's residual kept), against --max-memory or the available memory.
 */
export function checkAnalysisMemory(values: SizeValues, task: TaskConfig, model: ModelConfig | null, dims: { dModel: number; layers: number; outWidth: number }): void {
  const { prompts = 16, dummies = 1, queries = 64, tasks = 64, shots = task.demos.max } = values;
  const seq = promptLength(task, shots);
  const shape = {
    layers: dims.layers,
    dModel: dims.dModel,
    heads: model?.heads ?? 1,
    dMlp: model ? dMlpOf(model) : 4 * dims.dModel,
    vocab: dims.outWidth,
    maxSeq: model?.maxSeq ?? seq,
  };
  const total = tasks * (prompts * dummies + queries);
  checkMemory(analysisMemory(shape, total, seq), `${total} prompts of ${seq} positions`, 'lower --prompts, --queries or --tasks', values['max-memory']);
}

// The output-file rule lives in the library (one rule, one place).
export { checkOutputFile, writeTextOnce, isArrowFile, isOwnHtml, isOwnJson, startsWith } from '../util/output.js';

/** An input file given on the command line: it must exist and be a file. */
export function checkInputFile(file: string, what: string): void {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) throw new InputError(`${file} does not exist`);
  if (st.isDirectory()) throw new InputError(`${file} is a folder, not ${what}`);
}
