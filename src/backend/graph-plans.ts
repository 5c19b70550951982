/**
 * The graphs the checkpoint Engine runs, built from the model's config (weights bound when the
 * session opens):
 *
 *   base    the forward pass with every layer's residual stream, q/k/v and attn.hook_z as outputs,
 *           the residual at every layer at one position (`at`), and the output at the last position;
 *   naive   the forward pass with chosen sites rewritten as x·keep + add (one full pass per variant);
 *   suffix  the suffix forward of model/suffix.ts for a plan (the fast path, see fast-path.ts).
 */
import { Graph, type Value, op } from '../graph/index.js';
import { type ModelConfig, dHeadOf } from '../model/config.js';
import { hookPoint, residualAtLayer } from '../model/hooks.js';
import { modelInputs } from '../model/inputs.js';
import { type SuffixPlan, suffixForward } from '../model/suffix.js';
import { Transformer, declareParams, lastPosition } from '../model/transformer.js';
import { type Site, range, siteKey } from './backend.js';

/** The forward pass with residuals, keys, values and z as outputs, and the output at `at`. */
export function baseGraph(cfg: ModelConfig): Graph {
  const g = new Graph('float32');
  const { output, hooks, kv } = new Transformer(cfg, declareParams(g, cfg, null)).forward(modelInputs(g, cfg));
  const at = g.input('at', 'int64', [1]);
  const resid = range(cfg.layers + 1).map((l) => hooks.get(residualAtLayer(l).name)!);
  resid.forEach((r, l) => g.output(r, `resid.${l}`)); // [B, T, D]
  kv.forEach(({ k, v }, l) => {
    g.output(k, `k.${l}`); // [B, H, T, dh]
    g.output(v, `v.${l}`);
    g.output(hooks.get(hookPoint('attn.hook_z', l).name)!, `z.${l}`); // [B, T, H, dh]
  });
  g.output(op.concat(resid.map((r) => op.gather(r, at, 1)), 1), 'at.resid'); // [B, L+1, D]
  g.output(lastPosition(output), 'out.last'); // [B, O]
  return g;
}

/** A full forward pass that rewrites the listed sites as x·keep + add (feeds: naivePatchFeeds). */
export function naiveGraph(cfg: ModelConfig, sites: readonly Site[]): Graph {
  const g = new Graph('float32');
  const [H, dh] = [cfg.heads, dHeadOf(cfg)];
  const byHook = new Map<string, Site>(sites.map((s) => [s.kind === 'resid' ? residualAtLayer(s.layer).name : hookPoint('attn.hook_z', s.layer).name, s]));
  const inputs = modelInputs(g, cfg);
  const patchInputs = new Map(
    sites.map((s) => {
      const shape = s.kind === 'resid' ? ['batch', 'seq'] : ['batch', 'seq', H];
      const width = s.kind === 'resid' ? cfg.dModel : dh;
      return [siteKey(s), { keep: g.input(`keep.${siteKey(s)}`, 'float32', [...shape, 1]), add: g.input(`add.${siteKey(s)}`, 'float32', [...shape, width]) }];
    }),
  );
  const { output } = new Transformer(cfg, declareParams(g, cfg, null)).forward(inputs, {
    intervene: (hook, x: Value) => {
      const site = byHook.get(hook.name);
      if (!site) return x;
      const { keep, add } = patchInputs.get(siteKey(site))!;
      return op.add(op.mul(x, keep), add);
    },
  });
  g.output(lastPosition(output), 'out.last');
  return g;
}

/** The suffix forward for one plan, its output 'out' [N, C, O]. */
export function suffixGraph(cfg: ModelConfig, plan: SuffixPlan): Graph {
  const g = new Graph('float32');
  g.output(suffixForward(g, cfg, declareParams(g, cfg, null), plan), 'out');
  return g;
}
