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

/** Reads and checks a prompts file. */
export function readPromptsFile(file: string): PromptRecord[] {
  if (!fs.existsSync(file)) throw new InputError(`prompts file ${file} does not exist`);
  return parsePrompts(fs.readFileSync(file, 'utf8'), file);
}

/** Parses JSONL text (blank lines skipped); `where` names the source in errors. */
export function parsePrompts(text: string, where = 'prompts'): PromptRecord[] {
  const out: PromptRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const at = `${where}:${i + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (e) {
      throw new InputError(`${at}: not valid JSON (${(e as Error).message})`);
    }
    out.push(checkRecord(json, at));
  });
  if (out.length === 0) throw new InputError(`${where} holds no prompts`);
  return out;
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
