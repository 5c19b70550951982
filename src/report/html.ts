/** HTML text helpers and the page shell: one file, styles inline, no external resource. */

export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe to place inside a <script> element: no "</script>", no "<!--". */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Script text safe inside a <script> element (a bundled library): only "</script" needs breaking up. */
export function scriptText(code: string): string {
  return code.replace(/<\/(script)/gi, '<\\/$1');
}

export interface Section {
  readonly id: string;
  readonly title: string;
  readonly html: string;
}

/**
 * Markup that tvlens wrote. Only an Html passes into a page as it is; every other value given to
 * html`…`, table() or figure() is text and is escaped. Strings from a path, a manifest, a spec, an
 * analysis output or a hook map are never markup, so they cannot be passed through by mistake.
 */
export class Html {
  constructor(readonly markup: string) {}
  toString(): string {
    return this.markup;
  }
}

/** Markup from tvlens's own code (a chart, a template with no data in it). */
export const raw = (markup: string): Html => new Html(markup);

/** A template whose interpolated values are escaped, except those that are Html (arrays are joined). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0];
  values.forEach((v, i) => (out += fragment(v) + strings[i + 1]));
  return new Html(out);
}

function fragment(v: unknown): string {
  if (v instanceof Html) return v.markup;
  if (Array.isArray(v)) return v.map(fragment).join('');
  return v === null || v === undefined ? '' : esc(String(v));
}

export type Cell = string | number | Html;

/** A table: text cells are escaped, Html cells are kept. */
export function table(head: readonly string[], rows: readonly (readonly Cell[])[], cls = ''): string {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${fragment(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table class="${esc(cls)}"><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

/** A figure: the chart (made by svg.ts, which escapes its labels), a caption that says what to read from it, and how it was made. */
export function figure(svg: string, caption: Html | string, command?: string): string {
  const cmd = command ? `<div class="cmd">made by: <code>${esc(command)}</code></div>` : '';
  return `<figure>${svg}<figcaption>${fragment(caption)}${cmd}</figcaption></figure>`;
}

const STYLE = `
:root{--fg:#1b1f24;--muted:#5b6470;--line:#d8dde3;--bg:#fff;--panel:#f6f8fa;--accent:#0072B2}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{padding:18px 28px 10px;border-bottom:1px solid var(--line);background:var(--panel)}
header h1{margin:0 0 4px;font-size:22px}
header .sub{color:var(--muted)}
nav{margin-top:8px;font-size:13px}
nav a{color:var(--accent);margin-right:12px;text-decoration:none}
main{padding:8px 28px 40px;max-width:1700px}
section{margin:22px 0 8px;border-top:1px solid var(--line);padding-top:6px}
h2{font-size:18px;margin:10px 0 6px}
h3{font-size:15px;margin:12px 0 4px}
p.lead{color:var(--muted);margin:2px 0 10px;max-width:900px}
.figs{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure{margin:0;padding:10px;border:1px solid var(--line);border-radius:6px;background:#fff;max-width:100%;overflow-x:auto;width:min-content}
figcaption{font-size:12.5px;color:var(--muted);margin-top:4px;min-width:300px}
figcaption code{word-break:break-all}
.cmd{margin-top:3px;font-size:11.5px}
code{font:12px ui-monospace,"DejaVu Sans Mono",monospace;background:var(--panel);padding:1px 4px;border-radius:3px}
svg.chart{display:block;font-size:11.5px}
svg.chart text{fill:#1b1f24}
svg.chart .tick{fill:#5b6470;font-size:11px}
svg.chart .token{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;fill:#1b1f24}
svg.chart .title{font-size:12px;font-weight:600}
svg.chart .grid{stroke:#eceff2}
svg.chart .axis{stroke:#8a939e}
svg.chart .mark-label{font-size:11px;font-weight:600}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--panel)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.problems{border:1px solid #e5a50a;background:#fff8e1;border-radius:6px;padding:8px 14px;margin:14px 0}
.problems li{margin:2px 0}
.stamp{color:var(--muted);font-size:12px}
details{margin:6px 0}
summary{cursor:pointer;color:var(--accent)}
pre{background:var(--panel);padding:8px;border-radius:4px;overflow-x:auto;font-size:12px;max-height:340px}
.explorer{display:grid;grid-template-columns:minmax(300px,420px) 1fr;gap:18px}
.explorer .controls label{display:block;margin:8px 0 2px;font-weight:600}
.explorer select,.explorer input[type=text]{width:100%;padding:4px;font:13px ui-monospace,"DejaVu Sans Mono",monospace}
.explorer input[type=range]{width:100%}
.explorer .prompt{font:15px ui-monospace,"DejaVu Sans Mono",monospace;background:var(--panel);padding:6px 8px;border-radius:4px;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 10px}
.card h4{margin:0 0 4px;font-size:13px;color:var(--muted);font-weight:600}
.card .pred{font:26px ui-monospace,"DejaVu Sans Mono",monospace}
.card .ok{color:#0a7d32}.card .bad{color:#b3261e}
.card .topk{font-size:12px;color:var(--muted)}
.status{color:var(--muted);font-size:12.5px;margin-top:6px}
`;

export interface Page {
  readonly title: string;
  readonly subtitle: Html | string;
  /** The one line that differs between two runs over the same inputs. */
  readonly stamp: string;
  readonly problems: readonly string[];
  readonly sections: readonly Section[];
  /** Inline module scripts and data blocks, placed at the end of the body. */
  readonly scripts: readonly string[];
}

export function page(p: Page): string {
  const nav = p.sections.map((s) => `<a href="#${s.id}">${esc(s.title)}</a>`).join('');
  const problems = p.problems.length
    ? `<div class="problems" id="problems"><strong>Some sections could not be drawn from these inputs:</strong><ul>${p.problems.map((m) => `<li>${esc(m)}</li>`).join('')}</ul></div>`
    : '';
  const body = p.sections.map((s) => `<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>\n${s.html}\n</section>`).join('\n');
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(p.title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<header><h1>${esc(p.title)}</h1><div class="sub">${fragment(p.subtitle)}</div><nav>${nav}</nav></header>`,
    `<main>${problems}\n${body}`,
    `<p class="stamp" id="stamp">${esc(p.stamp)}</p>`,
    '</main>',
    ...p.scripts,
    '</body></html>',
    '',
  ].join('\n');
}
