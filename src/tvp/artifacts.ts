/**
 * Training artifacts for TVP-loss, in the shape of ONNX Runtime's on-device training artifacts but
 * made of standard ops only, so any ONNX Runtime build runs them:
 *
 *   artifacts/training_model.onnx   batch + weights → loss, loss_icl, loss_tvp, grad.<param>
 *   artifacts/eval_model.onnx       batch + weights → loss, loss_icl, loss_tvp
 *   artifacts/optimizer_model.onnx  weights, grad.<param>, adam.m/v.<param>, lr, adam.c1, adam.c2
 *                                   → updated.<param>, updated.adam.m/v.<param>, grad_norm
 *   artifacts/checkpoint            a tensor bundle (src/checkpoint/bundle.ts): the weights and
 *                                   AdamW moments, with step, data-RNG state and the optimizer's
 *                                   betas in its header (c1 = 1/(1−β1^t), c2 = 1/(1−β2^t) at step t)
 *   artifacts/inputs.json           the models' input names, shapes and what each means
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TypedData } from '../graph/index.js';
import type { HostTensor } from '../runtime/session.js';
import type { RunConfig } from '../train/config.js';
import { type StepModels, buildStepModels } from '../train/step.js';
import { writeBundle } from '../checkpoint/bundle.js';
import { ensureDir, writeFileAtomic, writeJsonAtomic } from '../util/fs.js';
import { Rng } from '../util/rng.js';
import { TVP_INPUTS, type TvpConfig, tvpLossProgram } from './loss.js';

export const ARTIFACT_FILES = {
  training: 'training_model.onnx',
  eval: 'eval_model.onnx',
  optimizer: 'optimizer_model.onnx',
  checkpoint: 'checkpoint',
  inputs: 'inputs.json',
} as const;

/**
 * Writes the artifacts for `run` + `tvp` under `dir`, starting from `initial` weights (a fine-tune)
 * or a fresh initialisation, and returns the models as written.
 */
export function writeArtifacts(dir: string, run: RunConfig, tvp: TvpConfig, initial?: ReadonlyMap<string, TypedData>): StepModels {
  const build = () => tvpLossProgram(run, tvp, run.train.seed);
  const models = buildStepModels(build, run.optimizer, 'split');
  ensureDir(dir);
  writeFileAtomic(path.join(dir, ARTIFACT_FILES.training), models.training);
  writeFileAtomic(path.join(dir, ARTIFACT_FILES.eval), models.eval!);
  writeFileAtomic(path.join(dir, ARTIFACT_FILES.optimizer), models.optimizer!);

  const program = build();
  const tensors = new Map<string, HostTensor>();
  for (const p of program.graph.params) {
    const data = initial?.get(p.value.name) ?? p.data;
    const shape = p.value.shape as number[];
    tensors.set(p.value.name, { dtype: 'float32', shape, data });
    tensors.set(`adam.m.${p.value.name}`, { dtype: 'float32', shape, data: new Float32Array(data.length) });
    tensors.set(`adam.v.${p.value.name}`, { dtype: 'float32', shape, data: new Float32Array(data.length) });
  }
  const fields = {
    format: 'tvlens-state/1',
    step: 0,
    rng: new Rng(run.train.seed).state(),
    optimizer: { beta1: run.optimizer.beta1, beta2: run.optimizer.beta2, lr: run.optimizer.lr, schedule: run.optimizer.schedule },
  };
  writeBundle(path.join(dir, ARTIFACT_FILES.checkpoint), fields, tensors);
  writeJsonAtomic(path.join(dir, ARTIFACT_FILES.inputs), {
    batch: {
      'tokens | inputs + markers': "P, the few-shot prompts [batch, seq] (token ids) or [batch, seq, dIn] vectors with marker ids",
      targets: "P's answers at scored positions",
      weights: 'P: 1 at scored positions (every arrow), else 0',
      [TVP_INPUTS.sourcePos]: 'int64 [batch]: the position in P whose residual at layer ℓ is the task vector h',
      [`q.tokens | q.inputs + q.markers`]: 'Q, the zero-shot prompts x_q → of the same tasks',
      'q.targets, q.weights': "Q's answer at its arrow",
      [TVP_INPUTS.patchPos]: "int64 [batch]: Q's arrow position, where h replaces the residual at layer ℓ",
      ...(tvp.average > 1 ? { [TVP_INPUTS.groupMean]: `[batch, batch]: averages h over groups of ${tvp.average} prompts of one task` } : {}),
    },
    weights: 'one input per parameter, named as in the checkpoint bundle',
    optimizer: 'lr, adam.c1 = 1/(1-beta1^t), adam.c2 = 1/(1-beta2^t) for 1-based step t; adam.m.<param>, adam.v.<param>',
    tvp,
    model: run.model,
  });
  return models;
}

/** Reads the models back from disk, so that what trains is exactly what was written. */
export function readArtifacts(dir: string): StepModels {
  const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(dir, f)));
  return { training: read(ARTIFACT_FILES.training), eval: read(ARTIFACT_FILES.eval), optimizer: read(ARTIFACT_FILES.optimizer) };
}
