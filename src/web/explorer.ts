/**
 * The report's interactive explorer, in the browser. It runs the embedded injection graph (see
 * src/report/inject.ts) with onnxruntime-web and shows, for a task and a prompt, the ICL
 * prediction, the zero-shot prediction, and the prediction with the task's vector injected at
 * the layer chosen on the slider (and at every layer, in a strip).
 *
 * Two kinds of model (ExplorerModel's `kind`): token models take a typed prompt of symbols and
 * show the argmax and its top 3; regression models (linreg, sine) take demos x → y with x a vector,
 * fed as `inputs` and `markers`, and show each prediction with its squared error against f(x_q).
 *
 * onnxruntime-web from file:// (a file:// page is not cross-origin isolated and may not fetch
 * file:// URLs, so nothing is fetched): the ESM bundle is imported from a Blob URL, the
 * wasm is inflated from gzip with DecompressionStream and handed over as bytes, one thread.
 *
 * Its imports (score.ts, explorer-parts.ts) are inlined with it into one module script
 * (report/web-script.ts); the rest are types, erased when it is compiled.
 */
import type * as Ort from 'onnxruntime-web';
import type { ExplorerModel } from '../report/explorer.js';
// Scoring is tvlens's one implementation (tasks/score.ts): the report inlines it with this script.
import { argmax, softmaxAt, squaredError } from '../tasks/score.js';
// The explorer's pure parts, inlined the same way.
import { type ExplorerResult, type Prediction, type TokenModel, type VectorExplorerResult, type VectorModel, type VectorPrediction, b64, fmt, parsePrompt, parseVectors, round, rowsOf, scaleOf, taskLabel, tokensOf, truthOf, vectorText } from '../web/explorer-parts.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
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
    demos: $<HTMLTextAreaElement>('ex-demos'),
    relabel: $<HTMLButtonElement>('ex-relabel'),
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
    document.querySelectorAll<HTMLElement>('#explorer [data-kind]').forEach((e) => (e.hidden = e.dataset.kind !== m.kind));
    $('ex-cards').classList.toggle('vectors', m.kind === 'vectors');
    $('ex-hint').innerHTML =
      m.kind === 'tokens'
        ? `type one as <code>x→y, x→y, …, x_q→</code> with symbols 0–${m.vocab - 1}`
        : `edit the demos, one <code>x → y</code> per line with x ${m.dIn === 1 ? 'one number' : `a list of ${m.dIn} numbers`}, and the query <code>x_q →</code> on the last line`;
    $('ex-theta-how').textContent = `${m.thetaOptions.prompts} prompts with ${m.thetaOptions.shots} demos`;
    ui.task.innerHTML = '';
    m.tasks.forEach((t, i) => ui.task.add(new Option(`${taskLabel(m, i)}${t.split === 'heldout' ? ' (held-out)' : ''}`, String(i))));
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
    const m = current();
    if (m.kind === 'tokens') {
      const p = m.prompts[Number(ui.sample.value)];
      if (p) ui.prompt.value = [...p.demos.map(([x, y]) => `${x}→${y}`), `${p.query}→`].join(', ');
    } else {
      const p = m.prompts[Number(ui.sample.value)];
      if (p) ui.demos.value = vectorText(p.demos, p.query);
    }
    void update();
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

  /** One run of model i's injection graph on one prompt's feeds; the output row at the last position. */
  async function runLast(i: number, feeds: (ort: typeof Ort) => Record<string, Ort.Tensor>, seq: number, task: number, layer: number | null, pos: number): Promise<Float32Array> {
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
      ...feeds(ort),
      tv: new ort.Tensor('float32', tv, [width]),
      tv_layer_mask: new ort.Tensor('float32', mask, [m.layers + 1]),
      tv_pos: new ort.Tensor('int64', BigInt64Array.of(BigInt(pos)), []),
    });
    const all = out[m.output].data as Float32Array;
    const V = all.length / seq;
    return all.subarray((seq - 1) * V, seq * V);
  }

  async function predict(i: number, tokens: number[], task: number, layer: number | null, pos: number): Promise<Prediction> {
    const feeds = (ort: typeof Ort) => ({ tokens: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, tokens.length]) });
    return summarise(Array.from(await runLast(i, feeds, tokens.length, task, layer, pos)));
  }

  async function update(): Promise<void> {
    const m = current();
    return m.kind === 'tokens' ? updateTokens() : updateVectors();
  }

  async function updateTokens(): Promise<void> {
    const id = ++runId;
    const mi = Number(ui.model.value);
    const m = models[mi] as TokenModel;
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
      render(m, { kind: 'tokens', model: mi, task, layer, tokens, zeroShotTokens: zero, injectPos: pos, icl, zeroShot, injected, expected }, agree, parsed.demos.length);
      ready();
    } catch (e) {
      failed(e);
    }
  }

  // ---- regression models: x a vector of dIn numbers, y a number






  async function predictVector(i: number, rows: { inputs: Float32Array; markers: number[] }, task: number, layer: number | null, pos: number, truth: number): Promise<VectorPrediction> {
    const m = models[i] as VectorModel;
    const T = rows.markers.length;
    const feeds = (ort: typeof Ort) => ({
      inputs: new ort.Tensor('float32', rows.inputs, [1, T, m.dIn]),
      markers: new ort.Tensor('int64', BigInt64Array.from(rows.markers, BigInt), [1, T]),
    });
    const value = (await runLast(i, feeds, T, task, layer, pos))[0];
    return { value, sqErr: squaredError([value], [truth], 0).se };
  }

  async function updateVectors(): Promise<void> {
    const id = ++runId;
    const mi = Number(ui.model.value);
    const m = models[mi] as VectorModel;
    const task = Number(ui.task.value);
    const layer = Number(ui.layer.value);
    ui.layerLabel.textContent = layerName(layer);
    let parsed;
    try {
      parsed = parseVectors(ui.demos.value, m);
    } catch (e) {
      setStatus(`prompt: ${(e as Error).message}`);
      dim(true);
      return;
    }
    const full = rowsOf(m, parsed.demos, parsed.query);
    const zero = rowsOf(m, [], parsed.query);
    if (full.markers.length > m.maxSeq) {
      setStatus(`the prompt has ${full.markers.length} positions (${parsed.demos.length} demos); this model takes at most ${m.maxSeq}`);
      dim(true);
      return;
    }
    state.state = 'running';
    setStatus('running the model in the browser (onnxruntime-web, wasm)…');
    try {
      await session(mi);
      const pos = zero.markers.length - 1;
      const truth = truthOf(m, task, parsed.query);
      const icl = await predictVector(mi, full, task, null, pos, truth);
      const zeroShot = await predictVector(mi, zero, task, null, pos, truth);
      const injected: VectorPrediction[] = [];
      for (let l = 0; l <= m.layers; l++) injected.push(await predictVector(mi, zero, task, l, pos, truth));
      if (id !== runId) return;
      const agree = parsed.demos.filter(([x, y]) => Math.abs(truthOf(m, task, x) - y) <= 1e-3 * Math.max(1, Math.abs(y))).length;
      renderVectors(
        m,
        {
          kind: 'vectors',
          model: mi,
          task,
          layer,
          inputs: Array.from(full.inputs),
          markers: full.markers,
          zeroShotInputs: Array.from(zero.inputs),
          zeroShotMarkers: zero.markers,
          injectPos: pos,
          icl,
          zeroShot,
          injected,
          truth,
          scale: scaleOf(m, task),
        },
        agree,
        parsed.demos.length,
      );
      ready();
    } catch (e) {
      failed(e);
    }
  }

  function relabel(): void {
    const m = current();
    if (m.kind !== 'vectors') return;
    const task = Number(ui.task.value);
    try {
      const p = parseVectors(ui.demos.value, m);
      ui.demos.value = vectorText(p.demos.map(([x]) => [x, round(truthOf(m, task, x), 4)] as [number[], number]), p.query);
    } catch (e) {
      setStatus(`prompt: ${(e as Error).message}`);
      return;
    }
    void update();
  }

  function ready(): void {
    state.state = 'ready';
    document.body.dataset.explorer = 'ready';
  }

  function failed(e: unknown): void {
    state.error = String(e);
    state.state = 'error';
    setStatus(`the model could not run: ${e}`);
    console.error(e);
  }

  function dim(on: boolean): void {
    document.querySelectorAll<HTMLElement>('#explorer .card, #ex-strip').forEach((c) => (c.style.opacity = on ? '0.35' : ''));
  }

  function ran(m: ExplorerModel): void {
    setStatus(`ran in the browser with onnxruntime-web (wasm) · model ${m.label}, step ${m.step}, weights ${m.weightsSha256.slice(0, 12)}…`);
  }

  function render(m: TokenModel, r: ExplorerResult, agree: number, demos: number): void {
    state.last = r;
    dim(false);
    const show = (t: number) => (t === m.arrow ? '→' : t === m.sep ? ',' : String(t));
    const card = (id: string, p: Prediction) => {
      const el = $(id);
      const ok = p.token === r.expected;
      el.style.background = ''; // a regression model's shading, if one was shown before
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
    ran(m);
  }

  function renderVectors(m: VectorModel, r: VectorExplorerResult, agree: number, demos: number): void {
    state.last = r;
    dim(false);
    // Green at 0, red at or above the task's mean y² (what predicting 0 would cost on average).
    const shade = (e: number) => `hsl(${Math.round(120 * (1 - Math.min(1, e / Math.max(r.scale, 1e-12))))}, 65%, 88%)`;
    const card = (id: string, p: VectorPrediction) => {
      const el = $(id);
      el.style.background = shade(p.sqErr);
      el.querySelector('.pred')!.textContent = fmt(p.value);
      el.querySelector('.topk')!.textContent = `squared error ${fmt(p.sqErr)}`;
    };
    card('ex-icl', r.icl);
    card('ex-zero', r.zeroShot);
    $('ex-zero').querySelector('h4')!.textContent = `Zero-shot: ${m.format === 'triplet' ? 'x_q →' : 'x_q'} alone`;
    card('ex-inj', r.injected[r.layer]);
    $('ex-inj').querySelector('h4')!.textContent = `Zero-shot + task vector at ${layerName(r.layer)}`;
    $('ex-truth').querySelector('.pred')!.textContent = fmt(r.truth);
    $('ex-truth').querySelector('.topk')!.textContent = `task mean y² ${fmt(r.scale)}`;
    const show = (inputs: number[], markers: number[]) => {
      let k = 0;
      return markers
        .map((mk, i) => {
          if (mk === m.markers.arrow) return '→';
          if (mk === m.markers.sep) return ',';
          // Data rows alternate x, y (the query's x last); a y is coordinate 0 of its row.
          const isY = m.format === 'triplet' ? markers[i - 1] === m.markers.arrow : k % 2 === 1;
          k++;
          return isY ? fmt(inputs[i * m.dIn]) : `[${inputs.slice(i * m.dIn, (i + 1) * m.dIn).map(fmt).join(' ')}]`;
        })
        .join(' ');
    };
    $('ex-tokens').textContent = `${show(r.inputs, r.markers)}   (${r.markers.length} positions; inputs [1, ${r.markers.length}, ${m.dIn}] + markers)`;
    $('ex-zero-tokens').textContent = show(r.zeroShotInputs, r.zeroShotMarkers);
    const t = m.tasks[r.task];
    const f = t.family === 'linreg' ? `w·x with w = [${t.w.map(fmt).join(', ')}]` : `${fmt(t.a)}·sin(${fmt(t.b)}·x + ${fmt(t.c)})`;
    const q = r.zeroShotInputs.slice(0, m.dIn);
    $('ex-expected').textContent = `${t.name}: f(x) = ${f}; f(x_q) = f([${q.map(fmt).join(', ')}]) = ${fmt(r.truth)}; the prompt's demos agree with this task (|y − f(x)| ≤ 10⁻³) on ${agree} of ${demos}`;
    const cells = r.injected.map(
      (p, l) =>
        `<td class="${l === r.layer ? 'sel' : ''}" style="background:${shade(p.sqErr)}" title="${layerName(l)}: ${fmt(p.value)}, squared error ${fmt(p.sqErr)}">${fmt(p.value)}<br><small>${fmt(p.sqErr)}</small></td>`,
    );
    $('ex-strip').innerHTML =
      `<tr><th>layer ℓ</th>${r.injected.map((_, l) => `<th>${l}</th>`).join('')}</tr>` + `<tr><th>injected prediction<br><small>squared error</small></th>${cells.join('')}</tr>`;
    ran(m);
  }

  /** The task as the task menu names it: its name and, for regression, its parameters. */
  models.forEach((m, i) => ui.model.add(new Option(`${m.label} (step ${m.step})`, String(i))));
  ui.model.addEventListener('change', fillModel);
  ui.task.addEventListener('change', fillTask);
  ui.sample.addEventListener('change', fillSample);
  ui.prompt.addEventListener('input', () => void update());
  ui.demos.addEventListener('input', () => void update());
  ui.relabel.addEventListener('click', relabel);
  ui.layer.addEventListener('input', () => void update());
  fillModel();
}

function summarise(logits: number[]): Prediction {
  const order = logits.map((_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  return { token: argmax(logits), top: order.slice(0, 3).map((i) => ({ token: i, p: softmaxAt(logits, i) })), logits };
}

try {
  main();
} catch (e) {
  state.state = 'error';
  state.error = String(e);
  console.error(e);
}
