/**
 * Activation caches: run prompts through a model, keep chosen hooks at chosen positions, and
 * stream them to an Arrow IPC file, one record batch per chunk of prompts, so memory stays that of
 * one chunk however many prompts there are. pandas/pyarrow read the file as it is
 * (`pyarrow.ipc.open_file`).
 *
 * One row per (prompt, position): prompt_id, task_id, position (int32), then one
 * FixedSizeList<Float32> column per hook holding that position's slice of the hook, flattened
 * (d_model for the residual stream; [head, d_head] for hook_z; [head, key_pos] for hook_pattern,
 * where the row is the query position). Each hook field's metadata gives its shape and axes; the
 * schema metadata records the model hash, the prompt seed, the task config and the tvlens version.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as arrow from 'apache-arrow';
import { InputError, fsErrorWords } from '../errors.js';
import type { HookPoint } from '../model/hooks.js';
import type { HostTensor } from '../runtime/session.js';
import { type Batch, type Split, type TaskConfig, promptLayout, sampleBatch, sliceBatch } from '../tasks/index.js';
import { trackTemp } from '../util/cleanup.js';
import { ensureDir } from '../util/fs.js';
import { formatBytes } from '../util/memory.js';
import { checkOutputFile, isArrowFile } from '../util/output.js';
import { Rng } from '../util/rng.js';
import { VERSION } from '../version.js';
import { type Backend, promptFeeds } from '../backend/backend.js';

/** 'last-arrow': each prompt's query position (its last arrow; the last x in pairwise format).
 *  'arrows': every scored position (each demo's arrow and the query's). 'all': every position.
 *  Numbers: those positions, negative ones counted from the end. */
export type PositionSpec = 'last-arrow' | 'arrows' | 'all' | readonly number[];
export const POSITION_PRESETS = ['last-arrow', 'arrows', 'all'] as const;

export interface CacheSpec {
  /** The task config the prompts are drawn from; null with `given` prompts. */
  readonly task: TaskConfig | null;
  /** Cache these prompts instead of drawing them (a prompts file); `prompts` must be their count. */
  readonly given?: Batch;
  readonly prompts: number;
  /** Hook names to keep (see `selectHooks`). */
  readonly hooks: readonly string[];
  /** Default 0. */
  readonly seed?: number;
  /** Demos per prompt. Default: the task's largest count (task.demos.max). */
  readonly demos?: number;
  /** Which tasks the prompts come from. Default 'train'. */
  readonly split?: Split;
  /** Default 'last-arrow'. */
  readonly positions?: PositionSpec;
  /** Prompts per forward pass and per record batch. Default 32. */
  readonly chunk?: number;
}

export interface CacheMeta {
  readonly format: 'tvlens-cache/1';
  readonly tvlensVersion: string;
  readonly modelHash: string;
  readonly modelFile: string;
  readonly modelKind: 'tvlens' | 'foreign';
  readonly seed: number;
  readonly prompts: number;
  readonly demos: number;
  readonly split: Split;
  readonly positions: PositionSpec;
  /** The task config the prompts were drawn from; null for given prompts (a prompts file). */
  readonly task: TaskConfig | null;
  readonly hooks: readonly { readonly name: string; readonly kind: string; readonly layer: number | null; readonly shape: readonly number[]; readonly axes: readonly string[] }[];
}

export interface CacheSummary {
  readonly file: string;
  readonly prompts: number;
  readonly rows: number;
  readonly bytes: number;
  readonly hooks: readonly string[];
  readonly modelHash: string;
}

const META_KEY = 'tvlens.cache';

/**
 * The hooks `patterns` names, optionally only in `blocks` (block indices). A pattern is a hook
 * name, a glob with `*`, or 'resid': the residual stream at every task-vector layer
 * (blocks.0.hook_resid_pre and each block's hook_resid_post).
 */
export function selectHooks(source: Backend, patterns: readonly string[], blocks?: readonly number[]): string[] {
  for (const l of blocks ?? []) {
    if (!Number.isInteger(l) || l < 0 || l >= source.layers) throw new InputError(`block ${l} is out of range: this model's blocks are 0..${source.layers - 1}`);
  }
  const picked = new Set<string>();
  for (const p of patterns) {
    const before = picked.size;
    if (p === 'resid') {
      for (let l = 0; l <= source.layers; l++) picked.add(source.residual(l).name);
    } else if (p.includes('*')) {
      const re = new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
      for (const h of source.facts.hooks) if (re.test(h.name)) picked.add(h.name);
    } else picked.add(source.hook(p).name);
    if (picked.size === before && p !== 'resid') throw new InputError(`hook pattern '${p}' matches no hook. Hooks: ${source.facts.hooks.map((h) => h.name).join(', ')}`);
  }
  const keep = source.facts.hooks.filter((h) => picked.has(h.name) && (!blocks || (h.layer !== null && blocks.includes(h.layer))));
  if (keep.length === 0) throw new InputError(`no hook matches ${patterns.join(', ')}${blocks ? ` in blocks ${blocks.join(', ')}` : ''}`);
  return keep.map((h) => h.name);
}

/** Writes the cache atomically: to a temporary file, renamed into place once complete. */
export async function writeCache(source: Backend, file: string, spec: CacheSpec, onProgress?: (done: number, total: number) => void): Promise<CacheSummary> {
  const task = spec.task;
  const given = spec.given;
  if (!task && !given) throw new InputError('a cache needs a task config or given prompts');
  if (given && given.batch !== spec.prompts) throw new InputError(`prompts (${spec.prompts}) must be the number of given prompts (${given.batch})`);
  const demos = given ? given.demos : (spec.demos ?? task!.demos.max);
  const chunk = spec.chunk ?? 32;
  const positions = spec.positions ?? 'last-arrow';
  const seed = spec.seed ?? 0;
  const split = spec.split ?? 'train';
  if (!Number.isInteger(spec.prompts) || spec.prompts < 1) throw new InputError(`the number of prompts must be a positive integer, got ${spec.prompts}`);
  if (!Number.isInteger(chunk) || chunk < 1) throw new InputError(`the chunk size must be a positive integer, got ${chunk}`);
  const hooks = spec.hooks.map((h) => source.hook(h));
  const seq = given ? given.seq : promptLayout(task!, demos).seq;
  source.checkSeq(seq);
  if (typeof positions !== 'string') explicitPositions(positions, seq); // fail before any work

  // The CLI's rule for --out, here so the library keeps it too: never a user's file, a folder or a link.
  checkOutputFile(file, 'the cache file', isArrowFile);
  ensureDir(path.dirname(path.resolve(file)));
  const tmp = `${file}.${process.pid}.tmp`;
  const untrack = trackTemp(tmp); // removed on SIGINT / SIGTERM too
  const fd = fs.openSync(tmp, 'w');
  let open = true;
  const close = () => {
    if (open) fs.closeSync(fd);
    open = false;
  };
  const writer = new arrow.RecordBatchFileWriter();
  // Drains the writer's queue into the file as it fills; awaited after each batch so no more than
  // one chunk's bytes wait in memory.
  const pump = (async () => {
    for await (const bytes of writer) fs.writeSync(fd, bytes);
  })();
  let rows = 0;
  try {
    const rng = new Rng(seed);
    let schema: arrow.Schema | null = null;
    for (let start = 0; start < spec.prompts; start += chunk) {
      const n = Math.min(chunk, spec.prompts - start);
      // A fixed demo count keeps prompt i the same whatever the chunk size (sampleBatch draws the
      // count from the Rng only when it is not given).
      const batch = given ? sliceBatch(given, start, start + n) : sampleBatch(task!, rng, n, { split, demos });
      const { hooks: acts } = await source.run(promptFeeds(batch), { fetch: hooks.map((h) => h.name) });
      const picks: { b: number; p: number }[] = [];
      for (let b = 0; b < n; b++) for (const p of positionsOf(positions, batch, b)) picks.push({ b, p });
      const columns = hooks.map((h) => gatherRows(acts[h.name], h, picks));
      schema ??= cacheSchema(source, hooks, columns, { seed, demos, split, positions, task, prompts: spec.prompts });
      if (start === 0) checkCacheSize(file, columns, spec.prompts / n);
      writer.write(recordBatch(schema, picks, batch, start, columns));
      rows += picks.length;
      await new Promise((r) => setImmediate(r));
      onProgress?.(start + n, spec.prompts);
    }
    writer.close();
    await pump;
    close();
    fs.renameSync(tmp, file);
  } catch (e) {
    writer.abort(e);
    await pump.catch(() => {});
    close();
    fs.rmSync(tmp, { force: true });
    const words = fsErrorWords(e); // a full or read-only disk: one line naming the cache
    throw words ? new InputError(`cannot write ${file}: ${words}`) : e;
  } finally {
    untrack();
  }
  return { file, prompts: spec.prompts, rows, bytes: fs.statSync(file).size, hooks: hooks.map((h) => h.name), modelHash: source.facts.modelHash };
}

/**
 * The whole cache against the free space where it goes, extrapolated from its first chunk (whose
 * row widths are then known): a billion prompts at every position is refused with the estimate
 * before it fills the disk.
 */
function checkCacheSize(file: string, columns: readonly Column[], chunks: number): void {
  const total = columns.reduce((a, c) => a + c.data.byteLength, 0) * chunks;
  let free = Infinity;
  try {
    const s = fs.statfsSync(path.dirname(path.resolve(file)));
    free = s.bavail * s.bsize;
  } catch {
    // no statfs here: only the absolute bound below applies
  }
  const limit = Math.min(free, 2 ** 40);
  if (total > limit) {
    throw new InputError(`the cache ${file} would take about ${formatBytes(total)}, more than the ${Number.isFinite(free) && free < 2 ** 40 ? `${formatBytes(free)} free there` : `${formatBytes(2 ** 40)} a cache may take`}: cache fewer prompts, positions or hooks`);
  }
}

/** The positions kept from prompt `b` of a batch. */
export function positionsOf(spec: PositionSpec, batch: Batch, b: number): number[] {
  if (spec === 'last-arrow') return [batch.queryPos[b]];
  if (spec === 'all') return Array.from({ length: batch.seq }, (_, i) => i);
  if (spec === 'arrows') return scoredPositions(batch, b);
  return explicitPositions(spec, batch.seq);
}

function explicitPositions(spec: readonly number[], seq: number): number[] {
  return spec.map((p) => {
    const q = p < 0 ? seq + p : p;
    if (!Number.isInteger(p) || q < 0 || q >= seq) throw new InputError(`position ${p} is out of range: prompts have positions 0..${seq - 1} (or -${seq}..-1 from the end)`);
    return q;
  });
}

/** Every scored position of prompt `b`: where the batch's weights are set, in order. */
function scoredPositions(batch: Batch, b: number): number[] {
  const out: number[] = [];
  for (let t = 0; t < batch.seq; t++) if (batch.weights[b * batch.seq + t] !== 0) out.push(t);
  return out.length ? out : [batch.queryPos[b]];
}

export function parsePositions(text: string): PositionSpec {
  if ((POSITION_PRESETS as readonly string[]).includes(text)) return text as PositionSpec;
  const nums = text.split(',').map((s) => Number(s.trim()));
  if (text.trim() === '' || nums.some((n) => !Number.isInteger(n))) {
    throw new InputError(`'${text}' is not a position spec. Should be one of: ${POSITION_PRESETS.join(', ')}, or comma-separated indices (negative from the end)`);
  }
  return nums;
}

interface Column {
  readonly rowShape: number[];
  readonly axes: string[];
  readonly width: number;
  readonly data: Float32Array;
}

/** The rows of one hook at (prompt, position) picks: the hook's slice at that position, flattened. */
function gatherRows(t: HostTensor, hook: HookPoint, picks: readonly { b: number; p: number }[]): Column {
  const shape = t.shape;
  const posAxis = hook.axes.indexOf('pos') >= 0 ? hook.axes.indexOf('pos') : hook.axes.indexOf('query_pos');
  if (posAxis < 1 || shape.length !== hook.axes.length) {
    throw new InputError(`hook ${hook.name} has shape [${shape.join(', ')}], not [${hook.axes.join(', ')}]`);
  }
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, c) => a * c, 1));
  const rest = shape.map((_, i) => i).filter((i) => i !== 0 && i !== posAxis);
  const rowShape = rest.map((i) => shape[i]);
  const width = rowShape.reduce((a, c) => a * c, 1);
  // Offsets of a row's elements from its (batch, pos) corner, computed once per hook and chunk.
  const offsets = new Int32Array(width);
  for (let j = 0; j < width; j++) {
    let rem = j;
    let off = 0;
    for (let k = rest.length - 1; k >= 0; k--) {
      off += (rem % rowShape[k]) * strides[rest[k]];
      rem = Math.floor(rem / rowShape[k]);
    }
    offsets[j] = off;
  }
  const src = t.data as Float32Array | Float64Array;
  const out = new Float32Array(picks.length * width);
  const contiguous = posAxis === 1;
  picks.forEach(({ b, p }, r) => {
    // A hook without a batch axis of its own (hook_pos_embed is [1, pos, d]) is the same for every prompt.
    const base = (shape[0] === 1 ? 0 : b) * strides[0] + p * strides[posAxis];
    if (contiguous) out.set(src.subarray(base, base + width), r * width);
    else for (let j = 0; j < width; j++) out[r * width + j] = src[base + offsets[j]];
  });
  return { rowShape, axes: rest.map((i) => hook.axes[i]), width, data: out };
}

function cacheSchema(
  source: Backend,
  hooks: readonly HookPoint[],
  columns: readonly Column[],
  run: Pick<CacheMeta, 'seed' | 'demos' | 'split' | 'positions' | 'task' | 'prompts'>,
): arrow.Schema {
  const meta: CacheMeta = {
    format: 'tvlens-cache/1',
    tvlensVersion: VERSION,
    modelHash: source.facts.modelHash,
    modelFile: path.basename(source.facts.file),
    modelKind: source.facts.kind,
    ...run,
    hooks: hooks.map((h, i) => ({ name: h.name, kind: h.kind, layer: h.layer, shape: columns[i].rowShape, axes: columns[i].axes })),
  };
  const int = (name: string) => new arrow.Field(name, new arrow.Int32(), false);
  const fields = [
    int('prompt_id'),
    int('task_id'),
    int('position'),
    ...hooks.map((h, i) => {
      const c = columns[i];
      const fieldMeta = new Map([['shape', JSON.stringify(c.rowShape)], ['axes', JSON.stringify(c.axes)], ['layer', String(h.layer ?? '')], ['kind', h.kind]]);
      return new arrow.Field(h.name, listType(c.width), false, fieldMeta);
    }),
  ];
  return new arrow.Schema(
    fields,
    new Map([
      [META_KEY, JSON.stringify(meta)],
      // Flat copies of the fields most often wanted, readable without parsing JSON.
      ['model_hash', source.facts.modelHash],
      ['prompt_seed', String(run.seed)],
      ['tvlens_version', VERSION],
    ]),
  );
}

const listType = (width: number) => new arrow.FixedSizeList(width, new arrow.Field('item', new arrow.Float32(), false));

function recordBatch(schema: arrow.Schema, picks: readonly { b: number; p: number }[], batch: Batch, start: number, columns: readonly Column[]): arrow.RecordBatch {
  const n = picks.length;
  const ints = (f: (pick: { b: number; p: number }) => number) => arrow.makeData({ type: new arrow.Int32(), length: n, nullCount: 0, data: Int32Array.from(picks, f) });
  const children = [
    ints(({ b }) => start + b),
    ints(({ b }) => batch.taskIds[b]),
    ints(({ p }) => p),
    ...columns.map((c) => arrow.makeData({ type: listType(c.width), length: n, nullCount: 0, child: arrow.makeData({ type: new arrow.Float32(), length: n * c.width, nullCount: 0, data: c.data }) })),
  ];
  return new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children }));
}

export interface HookColumn {
  /** A row's shape (d_model, [head, d_head], ...); `width` is its product. */
  readonly shape: readonly number[];
  readonly axes: readonly string[];
  readonly width: number;
  /** rows × width values; row i is data.subarray(i·width, (i+1)·width). */
  readonly data: Float32Array;
}

export interface CacheData {
  readonly meta: CacheMeta;
  readonly rows: number;
  readonly promptId: Int32Array;
  readonly taskId: Int32Array;
  readonly position: Int32Array;
  readonly hooks: Readonly<Record<string, HookColumn>>;
}

export interface ReadOptions {
  /** Fail unless the cache was made from the model with this hash. */
  readonly expectModelHash?: string;
  /** Read only these hook columns. Default: all. */
  readonly hooks?: readonly string[];
}

/** Reads a cache file into one typed array per column. */
export function readCache(file: string, options: ReadOptions = {}): CacheData {
  if (!fs.existsSync(file)) throw new InputError(`cache ${file} does not exist`);
  const st = fs.statSync(file);
  if (!st.isFile()) throw new InputError(`cache ${file} is ${st.isDirectory() ? 'a folder' : 'not a regular file'}, not an Arrow file`);
  if (st.size === 0) throw new InputError(`cache ${file} is empty, not an Arrow file`);
  if (!isArrowFile(file)) throw new InputError(`cache ${file} is not an Arrow file (it does not start with ARROW1): give a file written by tvlens cache`);
  let table: arrow.Table;
  try {
    table = arrow.tableFromIPC(fs.readFileSync(file));
  } catch (e) {
    throw new InputError(`${file} is not an Arrow IPC file (${(e as Error).message.split('\n')[0]})`);
  }
  const raw = table.schema.metadata.get(META_KEY);
  if (!raw) throw new InputError(`${file} is an Arrow file but not a tvlens cache (no '${META_KEY}' metadata)`);
  const meta = JSON.parse(raw) as CacheMeta;
  if (options.expectModelHash !== undefined && options.expectModelHash !== meta.modelHash) {
    throw new InputError(`cache ${file} was made from model ${meta.modelHash.slice(0, 12)}… (${meta.modelFile}), not ${options.expectModelHash.slice(0, 12)}…`);
  }
  const names = meta.hooks.map((h) => h.name);
  for (const h of options.hooks ?? []) if (!names.includes(h)) throw new InputError(`cache ${file} has no hook ${h}. It has: ${names.join(', ')}`);
  const ints = (name: string) => concat(table, name, 1, (n) => new Int32Array(n)) as Int32Array;
  const hooks: Record<string, HookColumn> = {};
  for (const h of meta.hooks) {
    if (options.hooks && !options.hooks.includes(h.name)) continue;
    const width = h.shape.reduce((a, c) => a * c, 1);
    hooks[h.name] = { shape: h.shape, axes: h.axes, width, data: concat(table, h.name, width, (n) => new Float32Array(n)) as Float32Array };
  }
  return { meta, rows: table.numRows, promptId: ints('prompt_id'), taskId: ints('task_id'), position: ints('position'), hooks };
}

/** One column's values across all record batches, in one typed array. */
function concat(table: arrow.Table, name: string, width: number, alloc: (n: number) => Int32Array | Float32Array): Int32Array | Float32Array {
  const col = table.getChild(name);
  if (!col) throw new InputError(`the cache has no column '${name}'`);
  const out = alloc(table.numRows * width);
  let at = 0;
  for (const d of col.data) {
    const leaf = width === 1 ? d : d.children[0];
    const values = leaf.values as Int32Array | Float32Array;
    const from = width === 1 ? d.offset : d.offset * width + leaf.offset;
    out.set(values.subarray(from, from + d.length * width), at);
    at += d.length * width;
  }
  return out;
}
