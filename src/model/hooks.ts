/**
 * Hook points: the public names of the model's activations, as in TransformerLens. A hook carries
 * its layer as a number, so no code parses a layer back out of a name.
 */
export const HOOK_KINDS = [
  'hook_embed',
  'hook_pos_embed',
  'hook_resid_pre',
  'attn.hook_pattern',
  'attn.hook_z',
  'hook_attn_out',
  'hook_resid_mid',
  'hook_mlp_out',
  'hook_resid_post',
  'ln_final.hook_normalized',
] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

export interface HookPoint {
  readonly kind: HookKind;
  /** The block, or null for hooks outside the blocks (embeddings, final LayerNorm). */
  readonly layer: number | null;
  readonly name: string;
  /** Shape in TransformerLens's axis names. */
  readonly axes: readonly string[];
}

const AXES: Record<HookKind, readonly string[]> = {
  hook_embed: ['batch', 'pos', 'd_model'],
  hook_pos_embed: ['batch', 'pos', 'd_model'],
  hook_resid_pre: ['batch', 'pos', 'd_model'],
  'attn.hook_pattern': ['batch', 'head', 'query_pos', 'key_pos'],
  'attn.hook_z': ['batch', 'pos', 'head', 'd_head'],
  hook_attn_out: ['batch', 'pos', 'd_model'],
  hook_resid_mid: ['batch', 'pos', 'd_model'],
  hook_mlp_out: ['batch', 'pos', 'd_model'],
  hook_resid_post: ['batch', 'pos', 'd_model'],
  'ln_final.hook_normalized': ['batch', 'pos', 'd_model'],
};

const GLOBAL: ReadonlySet<HookKind> = new Set(['hook_embed', 'hook_pos_embed', 'ln_final.hook_normalized']);

export function hookPoint(kind: HookKind, layer: number | null = null): HookPoint {
  const name = GLOBAL.has(kind) ? kind : `blocks.${layer}.${kind}`;
  return { kind, layer: GLOBAL.has(kind) ? null : layer, name, axes: AXES[kind] };
}

/** Every hook point of a model with `layers` blocks, in forward order. */
export function allHookPoints(layers: number, positional: 'learned' | 'none' | 'rotary' = 'learned'): HookPoint[] {
  const hooks = [hookPoint('hook_embed')];
  if (positional === 'learned') hooks.push(hookPoint('hook_pos_embed'));
  for (let l = 0; l < layers; l++) {
    for (const kind of ['hook_resid_pre', 'attn.hook_pattern', 'attn.hook_z', 'hook_attn_out', 'hook_resid_mid', 'hook_mlp_out', 'hook_resid_post'] as const) {
      hooks.push(hookPoint(kind, l));
    }
  }
  hooks.push(hookPoint('ln_final.hook_normalized'));
  return hooks;
}

/**
 * The residual stream at "layer ℓ" in the task-vector convention: ℓ = 0 is the embeddings
 * (`blocks.0.hook_resid_pre`), ℓ ≥ 1 is the output of block ℓ−1 (`blocks.{ℓ-1}.hook_resid_post`).
 */
export function residualAtLayer(l: number): HookPoint {
  return l === 0 ? hookPoint('hook_resid_pre', 0) : hookPoint('hook_resid_post', l - 1);
}
