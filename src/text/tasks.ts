/**
 * Text tasks: pairs (x, y) such as "hot" → "cold", turned into token prompts in the formats of the
 * two papers this follows (LITERATURE.md §2.1–2.2):
 *
 *   hendel   Hendel et al.'s code: `example:{x}->{y}` demos joined by "\n", query `example:{x}->`
 *   todd     Todd et al.'s: BOS, then `Q: {x}\nA: {y}\n\n` demos, query `Q: {x}\nA:` (a space before every x and y)
 *
 * Both papers score the first token of the answer only; so does tvlens: a prompt's answer is the
 * first token of y as it follows the prompt. Prompts are built piece by piece (the query part of
 * each line, the answer, the separator), each piece tokenized alone, so that every prompt of a task
 * has the same length when its pairs share one token-length profile. Pairs whose (x, y) token
 * lengths differ from the most common profile are left out, and the result says how many.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../errors.js';
import type { PromptRecord } from '../tasks/prompt-file.js';
import { Rng } from '../util/rng.js';
import { PACKAGE_ROOT } from '../version.js';
import type { TextTokenizer } from './tokenizer.js';

export interface TextPair {
  readonly x: string;
  readonly y: string;
}

export interface TextTask {
  readonly name: string;
  readonly pairs: readonly TextPair[];
}

export type PromptFormat = 'hendel' | 'todd';
export const PROMPT_FORMATS: readonly PromptFormat[] = ['hendel', 'todd'];

/** The datasets shipped with tvlens (src/text/datasets/*.json), ≥ 50 pairs each. */
export const TEXT_TASKS = ['antonyms', 'country_capital', 'lowercase_uppercase', 'next_letter', 'singular_plural', 'present_past', 'number_word', 'copy_word'] as const;

export const DATASET_DIR = path.join(PACKAGE_ROOT, 'src', 'text', 'datasets');

/** A shipped task by name, or a user's file of pairs: JSON (`[{"x","y"}…]` or `{"pairs": […]}`) or JSONL (one `{"x","y"}` a line). */
export function loadTextTask(nameOrFile: string): TextTask {
  if ((TEXT_TASKS as readonly string[]).includes(nameOrFile)) return readPairsFile(path.join(DATASET_DIR, `${nameOrFile}.json`), nameOrFile);
  if (!fs.existsSync(nameOrFile)) throw new InputError(`no text task '${nameOrFile}': give a shipped task (${TEXT_TASKS.join(', ')}) or a JSON/JSONL file of {"x": …, "y": …} pairs`);
  return readPairsFile(nameOrFile, path.basename(nameOrFile).replace(/\.(jsonl?|txt)$/, ''));
}

export function readPairsFile(file: string, name: string): TextTask {
  const text = fs.readFileSync(file, 'utf8');
  let items: unknown[];
  const trimmed = text.trim();
  if (trimmed === '') throw new InputError(`task file ${file} is empty: it needs pairs like {"x": "hot", "y": "cold"}`);
  let whole: unknown;
  let parsed = false;
  try {
    whole = JSON.parse(trimmed);
    parsed = true;
  } catch (e) {
    // One JSON value that does not parse is an error; several lines may be JSONL.
    if (!trimmed.includes('\n')) throw new InputError(`task file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (parsed) {
    const pairs = Array.isArray(whole) ? whole : [(whole as { pairs?: unknown }).pairs ?? whole].flat();
    items = pairs as unknown[];
  } else {
    items = trimmed.split('\n').flatMap((line, i) => {
      if (line.trim() === '') return [];
      try {
        return [JSON.parse(line)];
      } catch (e) {
        throw new InputError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
      }
    });
  }
  const pairs = items.map((p, i) => {
    const o = p as { x?: unknown; y?: unknown };
    if (typeof o !== 'object' || o === null || typeof o.x !== 'string' || typeof o.y !== 'string') throw new InputError(`${file}: pair ${i + 1} is not {"x": "…", "y": "…"} with two strings`);
    if (o.x.trim() === '' || o.y.trim() === '') throw new InputError(`${file}: pair ${i + 1} has an empty ${o.x.trim() === '' ? 'x' : 'y'}`);
    return { x: o.x, y: o.y };
  });
  if (pairs.length === 0) throw new InputError(`task file ${file} holds no pairs: it needs pairs like {"x": "hot", "y": "cold"}`);
  return { name, pairs };
}

/** A pair as token pieces: the query part of its line, its answer, and (for demos) the separator after it. */
interface TokenizedPair {
  readonly query: readonly number[];
  readonly answer: readonly number[];
}

interface Pieces {
  readonly prefix: readonly number[];
  readonly separator: readonly number[];
  pair(p: TextPair): TokenizedPair;
}

function pieces(tok: TextTokenizer, format: PromptFormat): Pieces {
  if (format === 'hendel') return { prefix: tok.prefix(), separator: tok.encode('\n'), pair: (p) => ({ query: tok.encode(`example:${p.x}->`), answer: tok.encode(p.y) }) };
  return { prefix: tok.prefix(), separator: tok.encode('\n\n'), pair: (p) => ({ query: tok.encode(`Q: ${p.x}\nA:`), answer: tok.encode(` ${p.y}`) }) };
}

export interface TextPromptOptions {
  /** Prompt format. Default 'hendel'. */
  readonly format?: PromptFormat;
  /** Demos in a k-shot prompt. Default 5 (Hendel's). */
  readonly shots?: number;
  /** Prompts of each role per task. Default 32. */
  readonly prompts?: number;
  /** Default 0. */
  readonly seed?: number;
}

export interface TextPrompts {
  /** Demo (k-shot) and query (zero-shot) records, for tv-search, locality and cache. */
  readonly search: PromptRecord[];
  /** The k-shot prompts with their shuffled-label twins (`corrupted`), for patching and attribution. */
  readonly pairs: PromptRecord[];
  /** Per task: the pairs kept (those of the common token-length profile) out of all. */
  readonly kept: readonly { readonly task: string; readonly kept: number; readonly total: number }[];
  /** How prompts are scored, to print beside results. */
  readonly scoring: string;
  /** Token lengths of the pieces (one profile for every pair): a k-shot prompt is prefix + k·(query + answer + separator) + query. */
  readonly layout: { readonly prefix: number; readonly query: number; readonly answer: number; readonly separator: number };
}

export const SCORING = 'scored on the first token of the answer, as Hendel et al. and Todd et al. do';

/**
 * Token prompts for text tasks: per task `prompts` k-shot prompts (role "demo", with their
 * shuffled-label twins) and `prompts` zero-shot prompts (role "query"). A k-shot prompt's demos never
 * include its own query (Hendel's rule). Every task shares one token-length profile, so that all
 * prompts of a role have one length.
 */
export function textPromptRecords(tok: TextTokenizer, tasks: readonly TextTask[], options: TextPromptOptions = {}): TextPrompts {
  const format = options.format ?? 'hendel';
  if (!PROMPT_FORMATS.includes(format)) throw new InputError(`unknown prompt format '${format}'. Should be one of: ${PROMPT_FORMATS.join(', ')}`);
  const shots = options.shots ?? 5;
  const count = options.prompts ?? 32;
  if (!Number.isInteger(shots) || shots < 1) throw new InputError(`shots must be an integer ≥ 1, got ${shots}`);
  const pc = pieces(tok, format);
  const tokenized = tasks.map((t) =>
    t.pairs.map((p, i) => {
      const tp = pc.pair(p);
      if (tp.answer.length === 0) throw new InputError(`task '${t.name}': the answer of pair ${i + 1} (${JSON.stringify(p.y)}) tokenizes to nothing`);
      return tp;
    }),
  );
  // One profile for all tasks, so that every demo prompt (and every query) has one length.
  const profile = (tp: TokenizedPair) => `${tp.query.length},${tp.answer.length}`;
  const counts = new Map<string, number>();
  for (const tps of tokenized) for (const tp of tps) counts.set(profile(tp), (counts.get(profile(tp)) ?? 0) + 1);
  const common = [...counts].sort((a, b) => b[1] - a[1])[0][0];
  const rng = new Rng(options.seed ?? 0);
  const search: PromptRecord[] = [];
  const twins: PromptRecord[] = [];
  const kept = tasks.map((t, ti) => {
    const pairs = tokenized[ti].filter((tp) => profile(tp) === common);
    if (pairs.length < shots + 2) {
      throw new InputError(`task '${t.name}' keeps ${pairs.length} of ${t.pairs.length} pairs whose tokens share the common length (query ${common.split(',')[0]}, answer ${common.split(',')[1]} tokens); a ${shots}-shot prompt needs ${shots + 2}`);
    }
    for (let n = 0; n < count; n++) {
      const order = rng.permutation(pairs.length);
      const query = pairs[order[0]];
      const demos = order.slice(1, shots + 1).map((i) => pairs[i]);
      const labels = rng.permutation(shots).map((i) => demos[i].answer);
      const tokens = [...pc.prefix, ...demos.flatMap((d) => [...d.query, ...d.answer, ...pc.separator]), ...query.query];
      const corrupted = [...pc.prefix, ...demos.flatMap((d, i) => [...d.query, ...labels[i], ...pc.separator]), ...query.query];
      search.push({ tokens, task: t.name, role: 'demo', answer: query.answer[0] });
      twins.push({ tokens, corrupted, task: t.name, role: 'demo', answer: query.answer[0] });
      const zero = pairs[rng.int(pairs.length)];
      search.push({ tokens: [...pc.prefix, ...zero.query], task: t.name, role: 'query', answer: zero.answer[0] });
    }
    return { task: t.name, kept: pairs.length, total: t.pairs.length };
  });
  const [queryLength, answerLength] = common.split(',').map(Number);
  return { search, pairs: twins, kept, scoring: SCORING, layout: { prefix: pc.prefix.length, query: queryLength, answer: answerLength, separator: pc.separator.length } };
}

/** Text tasks as an analysis's prompts: a shipped task's name, a pairs file, pairs of your own, or a list of them. */
export interface TextTaskInput extends TextPromptOptions {
  readonly task: string | TextTask | readonly (string | TextTask)[];
}

export const isTextTaskInput = (x: unknown): x is TextTaskInput => typeof x === 'object' && x !== null && !Array.isArray(x) && 'task' in x;

/** The prompts of a text-task input, tokenized by `tok`. */
export function textPrompts(tok: TextTokenizer, input: TextTaskInput): TextPrompts {
  const list = Array.isArray(input.task) ? (input.task as readonly (string | TextTask)[]) : [input.task as string | TextTask];
  if (list.length === 0) throw new InputError('no text task given');
  const tasks = list.map((t) => (typeof t === 'string' ? loadTextTask(t) : t));
  return textPromptRecords(tok, tasks, input);
}
