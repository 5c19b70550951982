/**
 * The memory guard of the analyses that keep whole runs: checked in the library before any prompt
 * is drawn, so the CLI, `report`, `study` and a library user all have it (the CLI once had it alone,
 * and the library's `patch({ prompts: 1e7 })` died of V8 heap exhaustion).
 */
import type { Backend } from '../backend/backend.js';
import { dMlpOf } from '../model/config.js';
import { checkMemory, fullRunMemory } from '../util/memory.js';

export function checkRunsFit(engine: Backend, what: string, runs: { prompts: number; seq: number; perBlock: number; count: number }, hint: string): void {
  const cfg = engine.modelInfo.config;
  const D = engine.dims.dModel;
  const shape = { layers: engine.layers, dModel: D, heads: engine.dims.heads ?? 1, dMlp: cfg ? dMlpOf(cfg) : 4 * D, vocab: engine.outWidth, maxSeq: runs.seq };
  checkMemory(fullRunMemory(shape, runs.prompts, runs.seq, runs.perBlock, runs.count), `${what} over ${runs.prompts} prompts of ${runs.seq} positions`, hint);
}
