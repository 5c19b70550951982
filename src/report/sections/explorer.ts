/** The interactive explorer's markup and the scripts it needs (data, onnxruntime-web, the UI code). */
import type { ExplorerModel } from '../explorer.js';
import { type Section, esc, scriptJson } from '../html.js';
import type { OrtAssets } from '../ort-assets.js';

export function explorerSection(models: readonly ExplorerModel[], ort: OrtAssets, uiScript: string): { section: Section; scripts: string[] } {
  const m0 = models[0];
  const html = `<p class="lead">Run the model here, in the browser (onnxruntime-web ${esc(ort.version)}, wasm, no server). Pick a task and a prompt, or type one as <code>x→y, x→y, …, x_q→</code> with symbols 0–${m0.vocab - 1}.
The task vector of the chosen task (precomputed in Node: the mean residual at the last arrow over ${m0.thetaOptions.prompts} prompts with ${m0.thetaOptions.shots} demos) is written over the last position of the zero-shot prompt (its arrow <code>x_q →</code> in the triplet format, <code>x_q</code> itself in the pairwise one) at the layer on the slider.</p>
<div class="explorer">
<div class="controls">
<label for="ex-model">model</label><select id="ex-model"></select>
<label for="ex-task">task</label><select id="ex-task"></select>
<label for="ex-sample">sample prompt</label><select id="ex-sample"></select>
<label for="ex-prompt">prompt (edit freely)</label><input type="text" id="ex-prompt" spellcheck="false" autocomplete="off">
<label for="ex-layer">inject the task vector at layer: <span id="ex-layer-label"></span></label><input type="range" id="ex-layer" min="0" max="${m0.layers}" step="1" value="${m0.defaultLayer}" list="ex-layer-ticks"><datalist id="ex-layer-ticks"></datalist>
<div class="status" id="ex-status">loading onnxruntime-web…</div>
</div>
<div>
<div class="cards">
<div class="card" id="ex-icl"><h4>ICL: the full prompt</h4><div class="pred">…</div><div class="topk"></div></div>
<div class="card" id="ex-zero"><h4>Zero-shot: the query alone</h4><div class="pred">…</div><div class="topk"></div></div>
<div class="card" id="ex-inj"><h4>Zero-shot + task vector</h4><div class="pred">…</div><div class="topk"></div></div>
</div>
<p>correct answer: <span id="ex-expected"></span></p>
<p>tokens fed (ICL): <span class="prompt" id="ex-tokens"></span></p>
<p>tokens fed (zero-shot): <span class="prompt" id="ex-zero-tokens"></span></p>
<table class="strip" id="ex-strip"></table>
<p class="status">Each cell: the zero-shot prediction with the task vector injected at that layer (green: correct for the chosen task; the slider's layer is outlined).</p>
</div>
</div>
<style>.strip td{font:14px ui-monospace,monospace;text-align:center;min-width:30px}.strip td.ok{background:#d9f2e1}.strip td.bad{background:#fbe1df}.strip td.sel{outline:2px solid #1b1f24}</style>`;
  const scripts = [
    `<script type="application/json" id="tvlens-explorer-data">${scriptJson({ models })}</script>`,
    `<script type="application/json" id="tvlens-ort-bundle">${scriptJson(ort.bundle)}</script>`,
    `<script type="application/json" id="tvlens-ort-wasm">${scriptJson(ort.wasmGzipBase64)}</script>`,
    `<script type="module">\n${uiScript.replace(/<\/(script)/gi, '<\\/$1')}</script>`,
  ];
  return { section: { id: 'explorer', title: 'Interactive explorer', html }, scripts };
}
