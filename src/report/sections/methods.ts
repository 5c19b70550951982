/** Methods: what made every figure (configs, seeds, model hashes, versions, commands). */
import { type Section, esc, html, table } from '../html.js';
import { type ModelInput, describeTask } from '../inputs.js';

export interface MethodsInput {
  readonly models: readonly ModelInput[];
  readonly tvlensVersion: string;
  readonly ortWebVersion: string | null;
  readonly reportCommand: string;
  /** Figure → the command that produced its data, in report order. */
  readonly commands: readonly (readonly [string, string])[];
  readonly notes: readonly string[];
  /** The bench's scale curve (docs/bench/scale.svg, written by `npm run bench -- scale`), where the package has one. */
  readonly scaleSvg?: Uint8Array | null;
}

export function methodsSection(x: MethodsInput): Section {
  const rows = x.models.map((m) => {
    const c = m.checkpoint?.manifest;
    const mc = c?.model;
    return [
      m.label,
      html`<code>${m.source}</code>`,
      c ? String(c.step) : '—',
      c ? String(c.seed) : '—',
      mc ? `${mc.layers} layers, d_model ${mc.dModel}, ${mc.heads} heads, ${mc.positional} positions` : '—',
      m.folder ? 'text tasks (their commands below)' : describeTask(m.task),
      c ? html`<code title="sha256 of the weights">${c.weightsSha256}</code>` : '—',
    ];
  });
  const configs = x.models
    .map((m) => {
      const cfg = m.config ?? (m.checkpoint ? { model: m.checkpoint.manifest.model, task: m.checkpoint.manifest.task, train: m.checkpoint.manifest.train } : null);
      return cfg ? `<details><summary>config of ${esc(m.label)}</summary><pre>${esc(JSON.stringify(cfg, null, 2))}</pre></details>` : '';
    })
    .join('');
  const cmds = table(['figure', 'command that produced its data'], x.commands.map(([f, c]) => [f, html`<code>${c}</code>`]));
  const body = `<p>tvlens ${esc(x.tvlensVersion)}${x.ortWebVersion ? `; explorer on onnxruntime-web ${esc(x.ortWebVersion)}` : ''}. This report: <code>${esc(x.reportCommand)}</code></p>
${table(['model', 'source', 'step', 'seed', 'architecture', 'tasks', 'weights sha256'], rows)}
<h3>Commands</h3>${cmds}
${x.notes.length ? `<h3>Notes</h3><ul>${x.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<h3>Configs</h3>${configs}${scaleFigure(x.scaleSvg ?? null)}`;
  return { id: 'methods', title: 'Methods', html: body };
}

/**
 * How tvlens's cost grows with the model on the machine the bench ran on, as an image: an SVG in an
 * <img> runs no script, whatever the file holds.
 */
function scaleFigure(svg: Uint8Array | null): string {
  if (!svg) return '';
  return `<h3>How the cost grows</h3><p>Forward pass, training step, task-vector search and patch sweep against d_model, layers and sequence length (log-log), from <code>npm run bench -- scale</code> on the development machine (docs/bench.md): what runs on a larger model costs about this much more.</p>
<img alt="tvlens scale curve" style="max-width:100%" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}">`;
}
