/** Attribution patching beside exact patching: one pair of heat maps per site, from `tvlens patch --method attribution` output. */
import type { AttributionGrid, AttributionResult } from '../../analysis/attribution.js';
import { type Section, esc, figure, html } from '../html.js';
import { heatmap, num } from '../svg.js';
import { rowLabel, splitColumn } from './patching.js';

function gridFigure(label: string, r: AttributionResult, g: AttributionGrid, command: string): string {
  const cols = g.columns.map(splitColumn);
  const map = (which: string, values: number[][]) =>
    heatmap({
      label: `${which}, ${g.site}, ${label}`,
      rows: g.rows.map(rowLabel),
      cols: cols.map((c) => c.token),
      subCols: cols.map((c) => c.role),
      values,
      xTitle: 'position in the prompt',
      yTitle: g.site.startsWith('resid') ? 'layer ℓ' : 'block',
      valueTitle: `${which}: normalised effect`,
    });
  const svgs = [map('attribution estimate', g.estimate), ...(g.exact ? [map('exact patching', g.exact)] : [])].join('');
  const agreement = g.pearson === null ? 'not compared with exact patching' : `Pearson r ${num(g.pearson)} with exact patching, top-${(r.options as { topK?: number }).topK ?? 10} overlap ${num(g.topKOverlap ?? NaN)}`;
  const caption = html`${label}, <code>${g.hook}</code>: the attribution estimate ((source − base) · ∂metric/∂activation, taken on the base run) ${g.exact ? 'beside exact patching of the same cells' : ''}; ${agreement}. \
${g.warnings.length ? html`<strong>Where it is weak:</strong> ${g.warnings.join('; ')}.` : ''}`;
  return figure(`<div class="pair">${svgs}</div>`, caption, command);
}

export function attributionSection(models: readonly { label: string; r: AttributionResult; command: string }[]): Section | null {
  if (models.length === 0) return null;
  const figs = models.flatMap(({ label, r, command }) => r.grids.map((g) => gridFigure(label, r, g, command)));
  // A report run here drops timings (they would make it differ run to run): then only the cell count.
  const timing = models
    .map(({ label, r }) => `${esc(label)}: ${r.cells} cells${r.ms.attribution > 0 ? ` in ${num(r.ms.attribution / 1000)} s${r.ms.exact ? ` (exact patching: ${num(r.ms.exact / 1000)} s)` : ''}` : ''}`)
    .join('; ');
  return {
    id: 'attribution',
    title: 'Attribution patching against exact patching',
    html: `<p class="lead">Attribution patching estimates every cell from one forward and one forward-plus-backward pass (the gradient at every hook from tvlens’s own autodiff). It is a linear approximation: it fails first where a patch is large or sits at a saturated nonlinearity. ${timing}.</p><div class="figs">${figs.join('')}</div>`,
  };
}
