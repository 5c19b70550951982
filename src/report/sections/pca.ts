/**
 * PCA scatter of task vectors at a chosen layer, coloured by task. One SVG per layer is drawn in
 * Node; radio buttons pick the one shown, with CSS only, so the figure needs no script and every
 * layer's chart is in the file.
 */
import type { PcaLayer } from '../../analysis/locality.js';
import { type Section, esc, figure } from '../html.js';
import { PALETTE, hues, scatter } from '../svg.js';

export interface PcaInput {
  readonly label: string;
  readonly tasks: readonly string[];
  readonly layers: readonly PcaLayer[];
  /** The layer shown first (the searched best layer, say). */
  readonly initial: number;
  readonly command: string;
}

const pct = (v: number) => (Number.isFinite(v) ? `${Math.round(100 * v)}% of variance` : 'no variance');

export function pcaFigures(p: PcaInput, index: number): string {
  const colors = p.tasks.length <= PALETTE.length ? [...PALETTE] : hues(p.tasks.length);
  const groups = p.tasks.map((t, i) => ({ label: t, color: colors[i] }));
  const name = `pca${index}`;
  // Layers go into attributes and a <style> rule: only integers (a hand-edited output may hold anything).
  p = { ...p, layers: p.layers.filter((l) => Number.isInteger(l.layer)), initial: Number(p.initial) };
  const radios = p.layers
    .map((l) => `<label><input type="radio" name="${name}" value="${l.layer}"${l.layer === p.initial ? ' checked' : ''}> ℓ=${l.layer}</label>`)
    .join(' ');
  const figs = p.layers.map((l) => {
    const centroids = l.centroids.map((c) => ({ x: c.x, y: c.y, group: c.task, title: `${p.tasks[c.task]}: its task vector θ (the mean of its prompts)` }));
    const svg = scatter({
      label: `PCA of task vectors at layer ${l.layer}, ${p.label}`,
      xTitle: `PC1 (${pct(l.explained[0] ?? NaN)})`,
      yTitle: `PC2 (${pct(l.explained[1] ?? NaN)})`,
      points: l.points.map((q, i) => ({ x: q.x, y: q.y, group: q.task, title: `${p.tasks[q.task]}, prompt ${i}` })),
      groups,
      highlight: centroids.filter((c) => Number.isFinite(c.x)),
    });
    const flat = !Number.isFinite(l.explained[0] ?? NaN) ? ' At this layer every prompt has the same residual at the read position (nothing before it differs), so all points coincide.' : '';
    return `<div class="pca-layer" data-layer="${l.layer}">${figure(svg, `${p.label}, layer ℓ=${l.layer}:${flat} Each small dot is one demo prompt’s residual at the read position (the last arrow; the query’s x in pairwise prompts), projected on the first two principal components of all prompts at this layer; large dots are each task’s mean (its task vector). Tasks that separate here are told apart by this layer.`, p.command)}</div>`;
  });
  // Only the checked layer's figure shows: :has() matches the radio inside this block.
  const css = p.layers.map((l) => `#${name}:has(input[value="${l.layer}"]:checked) .pca-layer[data-layer="${l.layer}"]{display:block}`).join('');
  return `<div class="pca" id="${name}"><style>#${name} .pca-layer{display:none}${css}</style><div class="pca-pick">layer: ${radios}</div>${figs.join('')}</div>`;
}
