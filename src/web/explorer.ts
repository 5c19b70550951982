/**
 * The report's interactive explorer, in the browser. It runs the embedded injection graph (see
 * src/report/inject.ts) with onnxruntime-web and shows, for a task and a prompt, the ICL
 * prediction, the zero-shot prediction, and the prediction with the task's vector injected at
 * the layer chosen on the slider (and at every layer, in a strip).
 *
 * onnxruntime-web from file:// (DESIGN.md §5): the ESM bundle is imported from a Blob URL, the
 * wasm is inflated from gzip with DecompressionStream and handed over as bytes, one thread.
 *
 * This file imports nothing at run time: it is inlined into the report as one module script.
 */
import type * as Ort from 'onnxruntime-web';

interface ExplorerModel {
  label: string;
  weightsSha256: string;
  step: number;
  onnx: string;
  output: string;
  layers: number;
  dModel: number;
  maxSeq: number;
  vocab: number;
  arrow: number;
  sep: number;
  format: 'triplet' | 'pairwise';
  shots: number;
  tasks: { name: string; family: string; split: 'train' | 'heldout'; table: number[] }[];
  theta: string;
  prompts: { task: number; demos: [number, number][]; query: number }[];
  defaultLayer: number;
}

export interface Prediction {
  /** The argmax symbol at the last position. */
  token: number;
  /** The three most likely tokens with their softmax probabilities. */
  top: { token: number; p: number }[];
  /** The logits at the last position. */
  logits: number[];
}

export interface ExplorerResult {
  model: number;
  task: number;
  layer: number;
  tokens: number[];
  zeroShotTokens: number[];
  injectPos: number;
  icl: Prediction;
  zeroShot: Prediction;
  injected: Prediction[];
  expected: number;
}

declare global {
  interface Window {
    tvlensExplorer?: { state: string; last: ExplorerResult | null; error: string | null };
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const state: NonNullable<Window['tvlensExplorer']> = { state: 'loading', last: null, error: null };
window.tvlensExplorer = state;

async function loadOrt(): Promise<typeof Ort> {
  const bundle = JSON.parse($('tvlens-ort-bundle').textContent!) as string;
  const url = URL.createObjectURL(new Blob([bundle], { type: 'text/javascript' }));
  const ort = (await import(/* @vite-ignore */ url)) as typeof Ort;
  const gz = JSON.parse($('tvlens-ort-wasm').textContent!) as string;
  const inflated = new Blob([b64(gz)]).stream().pipeThrough(new DecompressionStream('gzip'));
  ort.env.wasm.wasmBinary = new Uint8Array(await new Response(inflated).arrayBuffer());
  ort.env.wasm.numThreads = 1; // a file:// page is not cross-origin isolated: no SharedArrayBuffer
  return ort;
}

function main(): void {
  const models = (JSON.parse($('tvlens-explorer-data').textContent!) as { models: ExplorerModel[] }).models;
  const ui = {
    model: $<HTMLSelectElement>('ex-model'),
    task: $<HTMLSelectElement>('ex-task'),
    sample: $<HTMLSelectElement>('ex-sample'),
    prompt: $<HTMLInputElement>('ex-prompt'),
    layer: $<HTMLInputElement>('ex-layer'),
    layerLabel: $('ex-layer-label'),
    status: $('ex-status'),
  };
  const sessions = new Map<number, Promise<Ort.InferenceSession>>();
  const thetas = new Map<number, Float32Array>();
  let ortReady: Promise<typeof Ort> | null = null;
  let runId = 0;

  const setStatus = (s: string) => (ui.status.textContent = s);
  const layerName = (l: number) => (l === 0 ? 'ℓ = 0 (embeddings)' : `ℓ = ${l} (after block ${l - 1})`);
  const current = () => models[Number(ui.model.value)];

  function fillModel(): void {
    const m = current();
    ui.task.innerHTML = '';
    m.tasks.forEach((t, i) => ui.task.add(new Option(`${t.name}${t.split === 'heldout' ? ' (held-out)' : ''}`, String(i))));
    ui.layer.max = String(m.layers);
    $('ex-layer-ticks').innerHTML = Array.from({ length: m.layers + 1 }, (_, l) => `<option value="${l}"></option>`).join('');
    ui.layer.value = String(m.defaultLayer);
    fillTask();
  }

  function fillTask(): void {
    const m = current();
    const t = Number(ui.task.value);
    ui.sample.innerHTML = '';
    m.prompts.forEach((p, i) => p.task === t && ui.sample.add(new Option(`sample ${ui.sample.length + 1}`, String(i))));
    fillSample();
  }

  function fillSample(): void {
    const p = current().prompts[Number(ui.sample.value)];
    if (p) ui.prompt.value = [...p.demos.map(([x, y]) => `${x}→${y}`), `${p.query}→`].join(', ');
    void update();
  }

  /** "3→5, 7→9, 2→" into demos and a query; symbols must be 0..vocab−1. */
  function parsePrompt(text: string, m: ExplorerModel): { demos: [number, number][]; query: number } {
    const parts = text.split(',').map((s) => s.trim()).filter(Boolean);
    if (parts.length === 0) throw new Error('type a prompt such as 3→5, 7→9, 2→');
    const sym = (s: string, where: string) => {
      if (!/^\d+$/.test(s)) throw new Error(`'${s}' in ${where} is not a symbol (0..${m.vocab - 1})`);
      const v = Number(s);
      if (v >= m.vocab) throw new Error(`symbol ${v} in ${where} is out of range 0..${m.vocab - 1}`);
      return v;
    };
    const pairs = parts.map((p) => p.split(/→|->|\s+/).map((s) => s.trim()).filter(Boolean));
    const last = pairs.pop()!;
    if (last.length !== 1) throw new Error(`the query '${parts[parts.length - 1]}' should be one symbol followed by →`);
    const demos = pairs.map((p, i) => {
      if (p.length !== 2) throw new Error(`demo ${i + 1} '${parts[i]}' should be x→y`);
      return [sym(p[0], `demo ${i + 1}`), sym(p[1], `demo ${i + 1}`)] as [number, number];
    });
    return { demos, query: sym(last[0], 'the query') };
  }

  function tokensOf(m: ExplorerModel, demos: [number, number][], query: number): number[] {
    const t: number[] = [];
    for (const [x, y] of demos) t.push(...(m.format === 'triplet' ? [x, m.arrow, y, m.sep] : [x, y]));
    t.push(...(m.format === 'triplet' ? [query, m.arrow] : [query]));
    return t;
  }

  function session(i: number): Promise<Ort.InferenceSession> {
    let s = sessions.get(i);
    if (!s) {
      ortReady ??= loadOrt();
      s = ortReady.then((ort) => ort.InferenceSession.create(b64(models[i].onnx), { executionProviders: ['wasm'] }));
      sessions.set(i, s);
    }
    return s;
  }

  function theta(i: number): Float32Array {
    let t = thetas.get(i);
    if (!t) thetas.set(i, (t = new Float32Array(b64(models[i].theta).buffer)));
    return t;
  }

  async function predict(i: number, tokens: number[], task: number, layer: number | null, pos: number): Promise<Prediction> {
    const m = models[i];
    const ort = await ortReady!;
    const s = await session(i);
    const mask = new Float32Array(m.layers + 1);
    const width = m.dModel;
    let tv = new Float32Array(width);
    if (layer !== null) {
      mask[layer] = 1;
      tv = theta(i).slice((task * (m.layers + 1) + layer) * width, (task * (m.layers + 1) + layer + 1) * width);
    }
    const out = await s.run({
      tokens: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, tokens.length]),
      tv: new ort.Tensor('float32', tv, [width]),
      tv_layer_mask: new ort.Tensor('float32', mask, [m.layers + 1]),
      tv_pos: new ort.Tensor('int64', BigInt64Array.of(BigInt(pos)), []),
    });
    const all = out[m.output].data as Float32Array;
    const V = all.length / tokens.length;
    const logits = Array.from(all.subarray((tokens.length - 1) * V));
    return summarise(logits);
  }

  async function update(): Promise<void> {
    const id = ++runId;
    const mi = Number(ui.model.value);
    const m = models[mi];
    const task = Number(ui.task.value);
    const layer = Number(ui.layer.value);
    ui.layerLabel.textContent = layerName(layer);
    let parsed;
    try {
      parsed = parsePrompt(ui.prompt.value, m);
    } catch (e) {
      setStatus(`prompt: ${(e as Error).message}`);
      dim(true); // the cards still show the last prompt that ran
      return;
    }
    const tokens = tokensOf(m, parsed.demos, parsed.query);
    const zero = tokensOf(m, [], parsed.query);
    if (tokens.length > m.maxSeq) {
      setStatus(`the prompt has ${tokens.length} tokens; this model takes at most ${m.maxSeq}`);
      dim(true);
      return;
    }
    state.state = 'running';
    setStatus('running the model in the browser (onnxruntime-web, wasm)…');
    try {
      await session(mi);
      const pos = zero.length - 1;
      const icl = await predict(mi, tokens, task, null, pos);
      const zeroShot = await predict(mi, zero, task, null, pos);
      const injected: Prediction[] = [];
      for (let l = 0; l <= m.layers; l++) injected.push(await predict(mi, zero, task, l, pos));
      if (id !== runId) return; // a newer request superseded this one
      const expected = m.tasks[task].table[parsed.query];
      const agree = parsed.demos.filter(([x, y]) => m.tasks[task].table[x] === y).length;
      render(m, { model: mi, task, layer, tokens, zeroShotTokens: zero, injectPos: pos, icl, zeroShot, injected, expected }, agree, parsed.demos.length);
      state.state = 'ready';
      document.body.dataset.explorer = 'ready';
    } catch (e) {
      state.error = String(e);
      state.state = 'error';
      setStatus(`the model could not run: ${e}`);
      console.error(e);
    }
  }

  function dim(on: boolean): void {
    document.querySelectorAll<HTMLElement>('#explorer .card, #ex-strip').forEach((c) => (c.style.opacity = on ? '0.35' : ''));
  }

  function render(m: ExplorerModel, r: ExplorerResult, agree: number, demos: number): void {
    state.last = r;
    dim(false);
    const show = (t: number) => (t === m.arrow ? '→' : t === m.sep ? ',' : String(t));
    const card = (id: string, p: Prediction) => {
      const el = $(id);
      const ok = p.token === r.expected;
      el.querySelector('.pred')!.innerHTML = `<span class="${ok ? 'ok' : 'bad'}">${show(p.token)}</span> <small>${ok ? '✓' : '✗'}</small>`;
      el.querySelector('.topk')!.textContent = 'top 3: ' + p.top.map((q) => `${show(q.token)} (${(100 * q.p).toFixed(1)}%)`).join(', ');
    };
    card('ex-icl', r.icl);
    card('ex-zero', r.zeroShot);
    $('ex-zero').querySelector('h4')!.textContent = `Zero-shot: ${m.format === 'triplet' ? 'x_q →' : 'x_q'} alone`;
    card('ex-inj', r.injected[r.layer]);
    $('ex-inj').querySelector('h4')!.textContent = `Zero-shot + task vector at ${layerName(r.layer)}`;
    $('ex-tokens').textContent = r.tokens.map(show).join(' ');
    $('ex-zero-tokens').textContent = r.zeroShotTokens.map(show).join(' ');
    $('ex-expected').textContent = `${m.tasks[r.task].name}(${r.zeroShotTokens[0]}) = ${r.expected}; the prompt's demos agree with this task on ${agree} of ${demos}`;
    const cells = r.injected.map(
      (p, l) => `<td class="${p.token === r.expected ? 'ok' : 'bad'}${l === r.layer ? ' sel' : ''}" title="${layerName(l)}: ${show(p.token)} at ${(100 * p.top[0].p).toFixed(1)}%">${show(p.token)}</td>`,
    );
    $('ex-strip').innerHTML =
      `<tr><th>layer ℓ</th>${r.injected.map((_, l) => `<th>${l}</th>`).join('')}</tr>` + `<tr><th>injected prediction</th>${cells.join('')}</tr>`;
    setStatus(`ran in the browser with onnxruntime-web (wasm) · model ${m.label}, step ${m.step}, weights ${m.weightsSha256.slice(0, 12)}…`);
  }

  models.forEach((m, i) => ui.model.add(new Option(`${m.label} (step ${m.step})`, String(i))));
  ui.model.addEventListener('change', fillModel);
  ui.task.addEventListener('change', fillTask);
  ui.sample.addEventListener('change', fillSample);
  ui.prompt.addEventListener('input', () => void update());
  ui.layer.addEventListener('input', () => void update());
  fillModel();
}

function summarise(logits: number[]): Prediction {
  const max = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - max));
  const z = e.reduce((a, b) => a + b, 0);
  const order = logits.map((_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  return { token: order[0], top: order.slice(0, 3).map((i) => ({ token: i, p: e[i] / z })), logits };
}

try {
  main();
} catch (e) {
  state.state = 'error';
  state.error = String(e);
  console.error(e);
}
