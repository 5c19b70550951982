export { TASK_DEFAULTS, TASK_KINDS, FORMATS, DISCRETE_FAMILIES, resolveTaskConfig } from './config.js';
export type { TaskConfig, TaskKind, Format, DiscreteFamily, Range } from './config.js';
export type {
  Task,
  Family,
  Split,
  Example,
  OodOptions,
  Batch,
  TokenBatch,
  VectorBatch,
  DiscreteTask,
  OffsetTask,
  MultiplyTask,
  PermutationTask,
  LinregTask,
  SineTask,
  HmmTask,
  DfaTask,
} from './types.js';
export { SPLITS } from './types.js';
export { MARKER, specialTokens, taskIO, renderTokens } from './vocab.js';
export type { TaskIO } from './vocab.js';
export { taskList } from './universe.js';
export { answer } from './answer.js';
export { effectiveDim } from './regression.js';
export { hmmNextDistribution } from './hmm.js';
export { dfaAllowedNext } from './dfa.js';
export { type NgramOrder, ngramCurve } from './ngram.js';
export { addSymbolTargets, examplesBatch, promptLayout, promptLength, sampleBatch, sampleTrainBatch, sampleHeldoutBatch, taskPrompts, zeroShotPrompts } from './prompts.js';
export type { PromptLayout, BatchOptions } from './prompts.js';
export { concatBatches, sliceBatch } from './concat.js';
