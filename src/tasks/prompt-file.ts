/**
 * Bring-your-own prompts: a JSONL file, one prompt per line, for any model that takes token ids.
 * The schema (README, "Prompts files"):
 *
 *   {"tokens": [3, 12, 5, 13, 7, 12], "task": "offset+2", "role": "query", "answer": 9}
 *
 *   tokens     int[]    the prompt's token ids (required)
 *   task       string   groups prompts; a task-vector search reads one θ per task (default "prompts")
 *   role       string   tv-search: "demo" (θ is read from it) or "query" (zero-shot; θ is written
 *                       into it and it is scored). Default "query"
 *   position   int      where θ is read (demo) or written (query), or where `cache` reads with
 *                       --positions last-arrow; negative counts from the end. Default -1 (the last)
 *   answer     int      the token that should follow the last position (scored at the last position)
 *   corrupted  int[]    patch: the corrupted twin of `tokens`, of the same length
 *   wrong      int      patch: the token the logit difference is taken against (default: the
 *                       corrupted run's favourite other token)
 *
 * Unknown keys are rejected by name. Prompts of one role share one length and one position
 * (they run as one batch and are patched at one position).
 */
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { InputError } from '../errors.js';
import type { TokenBatch } from './types.js';

export interface PromptRecord {
  readonly tokens: readonly number[];
  readonly task?: string;
  readonly role?: 'demo' | 'query';
  readonly position?: number;
  readonly answer?: number;
  readonly corrupted?: readonly number[];
  readonly wrong?: number;
}

const KEYS = ['tokens', 'task', 'role', 'position', 'answer', 'corrupted', 'wrong'];
const ROLES = ['demo', 'query'];

/** The most a prompts file may hold, and one line of it: far beyond any analysis, well below what breaks V8. */
export const PROMPTS_FILE_LIMITS = { bytes: 256 * 2 ** 20, lineBytes: 2 ** 20, prompts: 1_000_000 } as const;

/**
 * Reads and checks a prompts file, line by line: it must be a regular file (a FIFO or a device such
 * as /dev/zero is refused before any read, so nothing blocks or grows without end), at most
 * PROMPTS_FILE_LIMITS.bytes, no line longer than lineBytes. A byte-order mark at the start is skipped.
 */
export function readPromptsFile(file: string): PromptRecord[] {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(code === 'ENOENT' ? `prompts file ${file} does not exist` : `prompts file ${file} cannot be read (${code})`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new InputError(`prompts file ${file} is a folder, not a JSONL file`);
    if (!st.isFile()) throw new InputError(`prompts file ${file} is not a regular file (a pipe, a device or a socket); save the prompts to a file first`);
    const { bytes, lineBytes } = PROMPTS_FILE_LIMITS;
    if (st.size > bytes) throw new InputError(`prompts file ${file} is ${(st.size / 2 ** 20).toFixed(0)} MiB, more than the ${bytes / 2 ** 20} MiB a prompts file may be; split it`);
    const parser = new PromptLines(file);
    const decoder = new StringDecoder('utf8');
    const buf = Buffer.alloc(1 << 16);
    let pending = '';
    let read = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      read += n;
      if (read > bytes) throw new InputError(`prompts file ${file} grew past ${bytes / 2 ** 20} MiB while being read; split it`);
      pending += decoder.write(buf.subarray(0, n));
      let start = 0;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n', start)) {
        parser.line(pending.slice(start, nl));
        start = nl + 1;
      }
      pending = pending.slice(start);
      if (pending.length > lineBytes) throw new InputError(`${file}:${parser.lineNo + 1}: a line longer than ${lineBytes / 2 ** 20} MiB; one prompt per line`);
    }
    parser.line(pending + decoder.end());
    return parser.done();
  } finally {
    fs.closeSync(fd);
  }
}

/** Parses JSONL text (blank lines skipped); `where` names the source in errors. */
export function parsePrompts(text: string, where = 'prompts'): PromptRecord[] {
  const parser = new PromptLines(where);
  for (const line of text.split('\n')) parser.line(line);
  return parser.done();
}

/** One line at a time: the record of each non-blank line, checked, with the line number in errors. */
class PromptLines {
  lineNo = 0;
  private readonly out: PromptRecord[] = [];
  constructor(private readonly where: string) {}

  line(text: string): void {
    this.lineNo++;
    if (this.lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark (Windows editors write one)
    if (text.trim() === '') return;
    const at = `${this.where}:${this.lineNo}`;
    if (this.out.length >= PROMPTS_FILE_LIMITS.prompts) throw new InputError(`${at}: more than ${PROMPTS_FILE_LIMITS.prompts} prompts; split the file`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new InputError(`${at}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
    }
    this.out.push(checkRecord(json, at));
  }

  done(): PromptRecord[] {
    if (this.out.length === 0) throw new InputError(`${this.where} holds no prompts`);
    return this.out;
  }
}

/** Checks one prompt object against the schema. */
export function checkRecord(json: unknown, at = 'prompt'): PromptRecord {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InputError(`${at}: expected an object like {"tokens": [...], "answer": 3}`);
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) throw new InputError(`${at}: unknown key '${k}'. Should be one of: ${KEYS.join(', ')}`);
  const ids = (v: unknown, key: string) => {
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isInteger(x) && x >= 0)) throw new InputError(`${at}: '${key}' must be a non-empty list of token ids (integers ≥ 0)`);
    return v as number[];
  };
  const int = (key: string, min = -Infinity) => {
    const v = o[key];
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || (v as number) < min) throw new InputError(`${at}: '${key}' must be an integer${min > -Infinity ? ` ≥ ${min}` : ''}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const tokens = ids(o.tokens, 'tokens');
  if (o.task !== undefined && typeof o.task !== 'string') throw new InputError(`${at}: 'task' must be a string`);
  if (o.role !== undefined && !ROLES.includes(o.role as string)) throw new InputError(`${at}: unknown role ${JSON.stringify(o.role)}. Should be one of: ${ROLES.join(', ')}`);
  const position = int('position');
  if (position !== undefined && (position >= tokens.length || position < -tokens.length)) {
    throw new InputError(`${at}: position ${position} is outside the prompt's ${tokens.length} tokens (valid: ${-tokens.length}..${tokens.length - 1})`);
  }
  const corrupted = o.corrupted === undefined ? undefined : ids(o.corrupted, 'corrupted');
  if (o.wrong !== undefined && o.answer !== undefined && o.wrong === o.answer) {
    throw new InputError(`${at}: 'wrong' is the same token as 'answer' (${JSON.stringify(o.answer)}): the logit difference between them is always 0; give another token, or leave 'wrong' out`);
  }
  if (corrupted && corrupted.length !== tokens.length) throw new InputError(`${at}: 'corrupted' has ${corrupted.length} tokens and 'tokens' ${tokens.length}; a pair must align position by position`);
  return { tokens, task: o.task as string | undefined, role: o.role as PromptRecord['role'], position, answer: int('answer', 0), corrupted, wrong: int('wrong', 0) };
}

/** A record's position, counted from the start. */
export const positionOf = (r: PromptRecord): number => {
  const p = r.position ?? -1;
  return p < 0 ? r.tokens.length + p : p;
};

/**
 * Prompts of one length as a token batch. The record's position is the batch's query position
 * (its one scored position), and the answer its target there (0 where none is given); analyses
 * read the output at the last position and score it against that target.
 * `pick` chooses the token list (default `tokens`; patching also batches `corrupted`).
 */
export function recordsToBatch(records: readonly PromptRecord[], what = 'prompts', pick: (r: PromptRecord) => readonly number[] = (r) => r.tokens): TokenBatch {
  if (records.length === 0) throw new InputError(`no ${what}`);
  const T = pick(records[0]).length;
  const B = records.length;
  for (const r of records) {
    if (pick(r).length !== T) throw new InputError(`${what} must share one length: one has ${T} tokens, another ${pick(r).length} (pad them, or split the file)`);
  }
  const tokens = new BigInt64Array(B * T);
  const targets = new BigInt64Array(B * T);
  const weights = new Float32Array(B * T);
  const shots = new Int32Array(B * T).fill(-1);
  records.forEach((r, b) => {
    pick(r).forEach((t, p) => (tokens[b * T + p] = BigInt(t)));
    targets[b * T + positionOf(r)] = BigInt(r.answer ?? 0);
    weights[b * T + positionOf(r)] = 1;
    shots[b * T + positionOf(r)] = 0;
  });
  return {
    kind: 'tokens',
    batch: B,
    seq: T,
    demos: 0,
    weights,
    shots,
    taskIds: new Int32Array(B).fill(-1),
    queryPos: Int32Array.from(records, positionOf),
    segment: 1,
    xOffset: 0,
    tasks: [],
    tokens,
    targets,
  };
}

/** The largest token id the records use (to check against a model's vocabulary). */
export function maxTokenId(records: readonly PromptRecord[]): number {
  let m = 0;
  for (const r of records) for (const t of [...r.tokens, ...(r.corrupted ?? []), r.answer ?? 0, r.wrong ?? 0]) m = Math.max(m, t);
  return m;
}

/** JSONL text of records (the inverse of parsePrompts). */
export function formatPrompts(records: readonly PromptRecord[]): string {
  return records.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)))).join('\n') + '\n';
}
