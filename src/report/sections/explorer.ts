/**
 * The interactive explorer's markup and the scripts it needs (data, onnxruntime-web, the UI code).
 * One set of controls serves every model: elements with `data-kind="tokens"` or `"vectors"` show
 * only while a model of that kind is picked (the browser toggles them; the first model's kind is
 * what a page without scripts shows).
 */
import type { ExplorerModel } from '../explorer.js';
import { type Section, esc, scriptJson } from '../html.js';
import type { OrtAssets } from '../ort-assets.js';

export function explorerSection(models: readonly ExplorerModel[], ort: OrtAssets, uiScript: string): { section: Section; scripts: string[] } {
  const m0 = models[0];
  const kinds = new Set(models.map((m) => m.kind));
  const only = (kind: ExplorerModel['kind']) => `data-kind="${kind}"${m0.kind === kind ? '' : ' hidden'}`;
  const hint =
    m0.kind === 'tokens'
      ? `type one as <code>x→y, x→y, …, x_q→</code> with symbols 0–${m0.vocab - 1}`
      : `edit the demos, one <code>x → y</code> per line with x ${m0.dIn === 1 ? 'one number' : `a list of ${m0.dIn} numbers`}, and the query <code>x_q →</code> on the last line`;
  const html = `<p class="lead">Run the model here, in the browser (onnxruntime-web ${esc(ort.version)}, wasm, no server). Pick a task and a prompt, or <span id="ex-hint">${hint}</span>.
The task vector of the chosen task (precomputed in Node: the mean residual at the last arrow over <span id="ex-theta-how">${m0.thetaOptions.prompts} prompts with ${m0.thetaOptions.shots} demos</span>) is written over the last position of the zero-shot prompt (its arrow <code>x_q →</code> in the triplet format, <code>x_q</code> itself in the pairwise one) at the layer on the slider.${
    kinds.has('vectors')
      ? ` For a regression model (x a vector fed through the linear read-in, y a number) the tasks are a few functions drawn in Node (w for <code>y = w·x</code>, or a, b, c for <code>y = a·sin(b·x + c)</code>; for models trained on a fresh function per prompt, the stand-ins the task-vector search draws), and each prediction is shown with its squared error against the true f(x_q).`
      : ''
  }</p>
<div class="explorer">
<div class="controls">
<label for="ex-model">model</label><select id="ex-model"></select>
<label for="ex-task">task</label><select id="ex-task"></select>
<label for="ex-sample">sample prompt</label><select id="ex-sample"></select>
<div ${only('tokens')}><label for="ex-prompt">prompt (edit freely)</label><input type="text" id="ex-prompt" spellcheck="false" autocomplete="off"></div>
<div ${only('vectors')}><label for="ex-demos">demos <code>x → y</code>, one per line, then the query <code>x_q →</code> (edit freely)</label><textarea id="ex-demos" rows="12" spellcheck="false" autocomplete="off"></textarea>
<button type="button" id="ex-relabel">set every demo's y to the task's f(x)</button></div>
<label for="ex-layer">inject the task vector at layer: <span id="ex-layer-label"></span></label><input type="range" id="ex-layer" min="0" max="${m0.layers}" step="1" value="${m0.defaultLayer}" list="ex-layer-ticks"><datalist id="ex-layer-ticks"></datalist>
<div class="status" id="ex-status">loading onnxruntime-web…</div>
</div>
<div>
<div class="cards" id="ex-cards">
<div class="card" id="ex-icl"><h4>ICL: the full prompt</h4><div class="pred">…</div><div class="topk"></div></div>
<div class="card" id="ex-zero"><h4>Zero-shot: the query alone</h4><div class="pred">…</div><div class="topk"></div></div>
<div class="card" id="ex-inj"><h4>Zero-shot + task vector</h4><div class="pred">…</div><div class="topk"></div></div>
<div class="card" id="ex-truth" ${only('vectors')}><h4>True f(x_q)</h4><div class="pred">…</div><div class="topk"></div></div>
</div>
<p><span ${only('tokens')}>correct answer</span><span ${only('vectors')}>the task</span>: <span id="ex-expected"></span></p>
<p><span ${only('tokens')}>tokens</span><span ${only('vectors')}>positions</span> fed (ICL): <span class="prompt" id="ex-tokens"></span></p>
<p><span ${only('tokens')}>tokens</span><span ${only('vectors')}>positions</span> fed (zero-shot): <span class="prompt" id="ex-zero-tokens"></span></p>
<table class="strip" id="ex-strip"></table>
<p class="status" ${only('tokens')}>Each cell: the zero-shot prediction with the task vector injected at that layer (green: correct for the chosen task; the slider's layer is outlined).</p>
<p class="status" ${only('vectors')}>Each cell: the zero-shot prediction with the task vector injected at that layer, and its squared error, shaded from green (0) to red (at or above the task's mean y²: |w|² for linreg, a²/2 for sine); the slider's layer is outlined.</p>
</div>
</div>
<style>.strip td{font:14px ui-monospace,monospace;text-align:center;min-width:30px}.strip td.ok{background:#d9f2e1}.strip td.bad{background:#fbe1df}.strip td.sel{outline:2px solid #1b1f24}
.explorer textarea{width:100%;box-sizing:border-box;padding:4px;font:12px ui-monospace,"DejaVu Sans Mono",monospace;white-space:pre;overflow-x:auto}.explorer button{margin-top:4px;font-size:12px}
.cards.vectors{grid-template-columns:repeat(4,minmax(0,1fr))}.cards.vectors .pred{font-size:20px}</style>`;
  const scripts = [
    `<script type="application/json" id="tvlens-explorer-data">${scriptJson({ models })}</script>`,
    `<script type="application/json" id="tvlens-ort-bundle">${scriptJson(ort.bundle)}</script>`,
    `<script type="application/json" id="tvlens-ort-wasm">${scriptJson(ort.wasmGzipBase64)}</script>`,
    `<script type="module">\n${uiScript.replace(/<\/(script)/gi, '<\\/$1')}</script>`,
  ];
  return { section: { id: 'explorer', title: 'Interactive explorer', html }, scripts };
}
