/**
 * tvlens as a library: `import { openModel } from 'tvlens'`. This file only re-exports the public
 * API; everything not named here is internal and may change.
 *
 * Layers in the task-vector analyses follow LAYER_CONVENTION: layer ℓ is the residual stream
 * entering block ℓ (ℓ = 0 the embeddings, `blocks.0.hook_resid_pre`; ℓ ≥ 1
 * `blocks.{ℓ-1}.hook_resid_post`; ℓ = L the final stream). Hook names are TransformerLens's.
 */

// The model
export { openModel, Model } from './api/model.js';
export { ActivationCache } from './api/activation-cache.js';
export type { ResidStack } from './api/activation-cache.js';
export type { OpenModelOptions, Prompts, HookPatch, RunOptions, RunWithCacheOptions, SearchInput, PatchInput, CacheToArrowOptions, FunctionVectorsOptions, AttributionPatchOptions } from './api/options.js';
export { Tensor } from './api/tensor.js';
export type { TensorData } from './api/tensor.js';
export { LAYER_CONVENTION } from './backend/backend.js';
export { residualAtLayer, hookPoint, HOOK_KINDS } from './model/hooks.js';
export type { HookPoint, HookKind } from './model/hooks.js';
export type { ModelConfig } from './model/config.js';

// Prompts: task configs, and your own prompts files
export { resolveTaskConfig } from './tasks/index.js';
export type { TaskConfig, Task, Batch, Split } from './tasks/index.js';
export { readPromptsFile, parsePrompts, formatPrompts } from './tasks/prompt-file.js';
export type { PromptRecord } from './tasks/prompt-file.js';
export { searchPromptsFor, searchPromptsFrom, searchPromptRecords } from './analysis/search-prompts.js';
export { promptPairs, promptPairsFrom } from './analysis/patching.js';

// Analysis results
export type { TvSearchOptions, TvSearchResult, TaskSearch, LayerScore } from './analysis/tv-search.js';
export type { SearchPrompts, TaskRef } from './analysis/search-prompts.js';
export type { PatchOptions, PatchResult, PromptPair, Scores, PatchSite, Direction, Corruption } from './analysis/patching.js';
export type { LocalityOptions, LocalityResult, LocalityMetrics } from './analysis/locality.js';
export type { FunctionVectorResult, FvTaskResult, FvLayerScore, RankedHead } from './analysis/function-vectors.js';
export { ATTRIBUTION_SITES } from './analysis/attribution.js';
export type { AttributionResult, AttributionGrid, AttributionSite } from './analysis/attribution.js';
export { readCache } from './analysis/cache.js';
export type { CacheSummary, CacheMeta, CacheData, PositionSpec } from './analysis/cache.js';

// Errors
export { TvlensError, InputError, RangeInputError, ConfigError, RuntimeSetupError, ShapeError, GraphError, GradientError } from './errors.js';
export { TrainingDivergedError } from './train/loop.js';
export { VERSION } from './version.js';
