export { writeReport } from './report.js';
export type { ReportOptions, ReportSummary } from './report.js';
export { readInputs } from './inputs.js';
export type { Inputs, ModelInput, AnalysisOutput } from './inputs.js';
export { injectionGraph, injectionModelBytes, injectionFeeds, INJECT_INPUTS } from './inject.js';
export { explorerModel } from './explorer.js';
export type { ExplorerModel } from './explorer.js';
