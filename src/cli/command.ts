/**
 * The shape of a CLI subcommand, and the parsing and error handling they share.
 *
 * Options are declared, each with its one converter from the typed text to a value (`int`, `choice`,
 * `indexList`, ...): `parse` applies them, so a command's `run` receives typed values, and a bad
 * value is refused with one line naming its flag before any work starts.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { SPLITS } from '../tasks/index.js';
import { oneOf } from '../util/config.js';
import { parseBytes } from '../util/memory.js';

/** One flag: its help line, its default, and its converter (none: the text as typed). `D`: whether it has a default. */
export interface OptionSpec<T = unknown, D extends boolean = boolean> {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  readonly default?: T;
  readonly multiple?: boolean;
  /** Text → value; throws a ConfigError naming `flag` when the text is not one. */
  readonly convert?: (text: string, flag: string) => T;
  /** Type-level only: whether the value is always present (a default, or a boolean). */
  readonly hasDefault?: D;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Options = Readonly<Record<string, OptionSpec<any>>>;

type ValueOf<S> = S extends OptionSpec<infer T, infer D> ? (D extends true ? T : T | undefined) : never;

/** The parsed values of options `O`. */
export type Values<O extends Options> = { readonly [K in keyof O]: ValueOf<O[K]> };

/** Options every command takes. */
export const COMMON = {
  json: flag('print machine-readable JSON on stdout instead of text'),
  help: flag('show this help'),
} as const;

/** A command with options `O`; plain `Command` is any command (a list of them, a test's helper). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Command<O extends Options = any> {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly options: O;
  readonly run: (values: CommandValues<O>, positionals: string[]) => Promise<void>;
}

/** What a command with options `O` receives: its own values and the common ones (--json). */
export type CommandValues<O extends Options> = Values<O & typeof COMMON>;

/** Declares a command; its `run` gets the values its options declare. */
export const command = <O extends Options>(c: Command<O>): Command<O> => c;

// ---- Option kinds, each with its converter. ----

/** A boolean flag: present or not. */
export function flag(description: string): OptionSpec<boolean, true> {
  return { type: 'boolean', description, default: false };
}

/** Text as typed (a path, a name). */
export function text(description: string): OptionSpec<string, false>;
export function text(description: string, dflt: string): OptionSpec<string, true>;
export function text(description: string, dflt?: string): OptionSpec<string> {
  return { type: 'string', description, default: dflt };
}

/** Text, the flag repeatable: every value, in order. */
export function texts(description: string): OptionSpec<string[], false> {
  return { type: 'string', description, multiple: true };
}

export interface IntRange {
  readonly min?: number;
  readonly max?: number;
}

/** An integer within a range (default: ≥ 1). */
export function int(description: string, range?: IntRange): OptionSpec<number, false>;
export function int(description: string, range: IntRange, dflt: number): OptionSpec<number, true>;
export function int(description: string, range: IntRange = { min: 1 }, dflt?: number): OptionSpec<number> {
  return { type: 'string', description, default: dflt, convert: (t, f) => toInteger(t, f, range) };
}

/** The largest seed: seeds are 32-bit (xoshiro128** is seeded from 32 bits), so larger ones would alias smaller ones. */
export const MAX_SEED = 2 ** 32 - 1;

/** A seed: an integer 0..2³²−1. */
export function seed(description: string): OptionSpec<number, false>;
export function seed(description: string, dflt: number): OptionSpec<number, true>;
export function seed(description: string, dflt?: number): OptionSpec<number> {
  return int(description, { min: 0, max: MAX_SEED }, dflt as number);
}

/** A decimal number, at least `min`, or above 0 (`positive`). */
export function num(description: string, bound: { min?: number; positive?: boolean } = {}): OptionSpec<number, false> {
  return {
    type: 'string',
    description,
    convert: (t, f) => {
      const n = toNumber(t, f);
      if (bound.min !== undefined && !(n >= bound.min)) throw new ConfigError(`expected a number ≥ ${bound.min}, got '${t}'`, f);
      if (bound.positive && !(n > 0)) throw new ConfigError(`expected a number > 0, got '${t}'`, f);
      return n;
    },
  };
}

/** One of `choices`. */
export function choice<C extends string>(description: string, choices: readonly C[]): OptionSpec<C, false>;
export function choice<C extends string>(description: string, choices: readonly C[], dflt: C): OptionSpec<C, true>;
export function choice<C extends string>(description: string, choices: readonly C[], dflt?: C): OptionSpec<C> {
  return { type: 'string', description, default: dflt, convert: (t, f) => oneOf(t, choices, f) };
}

/** A comma-separated list of integers within a range ("2,3"). */
export function intList(description: string, range?: IntRange): OptionSpec<number[], false>;
export function intList(description: string, range: IntRange, dflt: number[]): OptionSpec<number[], true>;
export function intList(description: string, range: IntRange = {}, dflt?: number[]): OptionSpec<number[]> {
  return {
    type: 'string',
    description,
    default: dflt,
    convert: (t, f) => {
      if (t.trim() === '') throw new ConfigError(`expected a comma-separated list of integers, got '${t}'`, f);
      return t.split(',').map((part) => toInteger(part.trim(), f, range));
    },
  };
}

/** Residual layers ℓ (--layers), block indices (--blocks) or positions: "0,2", "1-3", "0,2-3". */
export function indexList(description: string): OptionSpec<number[], false> {
  return { type: 'string', description, convert: (t, f) => parseIndexList(t, f) };
}

/** Bytes with an optional unit (8G, 512M). */
export function bytes(description: string): OptionSpec<number, false> {
  return { type: 'string', description, convert: (t, f) => parseBytes(t, f) };
}

/** A value of its own syntax, converted by `convert`. */
export function custom<T>(description: string, convert: (text: string, flag: string) => T): OptionSpec<T, false>;
export function custom<T>(description: string, convert: (text: string, flag: string) => T, dflt: T): OptionSpec<T, true>;
export function custom<T>(description: string, convert: (text: string, flag: string) => T, dflt?: T): OptionSpec<T> {
  return { type: 'string', description, convert, default: dflt };
}

// ---- Parsing. ----

export function parse<O extends Options>(cmd: Command<O>, argv: string[]): { values: CommandValues<O>; positionals: string[] } {
  const options: Options = { ...COMMON, ...cmd.options };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type, multiple: o.multiple ?? false }])),
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    // One line: Node's first sentence, and for a value that starts with a dash, its '--flag=-value' hint.
    const [first, ...rest] = (e as Error).message.split('\n');
    const hint = rest.find((l) => l.startsWith('To specify an option argument starting with a dash'));
    throw new ConfigError(`${first.replace(/\.$/, '')}${hint ? `: ${hint.replace(/^To specify/, 'to give').replace(/\.$/, '')}` : ''}. See 'tvlens ${cmd.name} --help'`);
  }
  const values: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(options)) {
    const raw = parsed.values[k] as string | boolean | string[] | undefined;
    const convert = o.convert;
    // An empty text value is never meant (an empty --out would resolve to the current folder); a converter words its own refusal.
    if (!convert) for (const r of Array.isArray(raw) ? raw : [raw]) if (typeof r === 'string' && r.trim() === '') throw new ConfigError('is required to have a value; leave the flag out for its default', `--${k}`);
    if (raw === undefined) values[k] = o.default;
    else if (!convert || typeof raw === 'boolean') values[k] = raw;
    else values[k] = Array.isArray(raw) ? raw.map((r) => convert(r, `--${k}`)) : convert(raw, `--${k}`);
  }
  givenFlags.set(values, new Set(Object.keys(parsed.values)));
  return { values: values as CommandValues<O>, positionals: parsed.positionals };
}

/** The flags a user typed, per parsed values object (defaults are filled in after). */
const givenFlags = new WeakMap<object, ReadonlySet<string>>();

/** Whether the user typed `--key` (as opposed to its default being filled in). */
export function given(values: object, key: string): boolean {
  return givenFlags.get(values)?.has(key) ?? (values as Record<string, unknown>)[key] !== undefined;
}

/** The flags that say how prompts are drawn from a task config: with --prompts-file nothing is drawn. */
const DRAWING_FLAGS = ['prompts', 'queries', 'dummies', 'shots', 'demos', 'split', 'tasks'] as const;

/** Refuses any of `flags` the user typed where it would be silently ignored, saying why in `words`. */
export function refuseGiven(values: object, flags: readonly string[], words: string): void {
  for (const f of flags) if (given(values, f)) throw new ConfigError(words, `--${f}`);
}

/** Refuses every typed flag but `allowed` (and --json, --help): for a path of a command that reads only those. */
export function refuseAllBut(values: object, allowed: readonly string[], words: string): void {
  for (const f of givenFlags.get(values) ?? []) if (!allowed.includes(f) && !(f in COMMON)) throw new ConfigError(words, `--${f}`);
}

/** Refuses --task and every drawing flag the user typed beside --prompts-file, where they would be silently ignored. */
export function refuseDrawingFlags(values: object, flags: readonly string[] = DRAWING_FLAGS): void {
  if (given(values, 'task')) throw new ConfigError('give the prompts either from a task (--task) or from a file (--prompts-file), not both', '--prompts-file');
  refuseGiven(values, flags, "draws prompts from a task; with --prompts-file the file's prompts are used, all of them: drop it");
}

export function help(cmd: Command): string {
  const options: Options = { ...cmd.options, ...COMMON };
  const lines = Object.entries(options).map(([k, o]) => {
    const name = o.type === 'string' ? `--${k} <value>` : `--${k}`;
    const shown = typeof o.default === 'string' || typeof o.default === 'number' ? String(o.default) : Array.isArray(o.default) && o.default.every((x) => typeof x === 'number') ? o.default.join(',') : null;
    const def = shown !== null && o.type === 'string' ? ` (default: ${shown})` : '';
    return `  ${name.padEnd(28)} ${o.description}${def}`;
  });
  return `tvlens ${cmd.name}: ${cmd.summary}\n\nUsage: ${cmd.usage}\n\nOptions:\n${lines.join('\n')}\n`;
}

/** A value that must be present (a string option without a default). */
export function required<T>(value: T | undefined, key: string): T {
  if (value === undefined || value === '') throw new ConfigError(`is required`, `--${key}`);
  return value;
}

// ---- Converters. ----

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A decimal number (an empty value, `0x10` or `NaN` is refused). */
function toNumber(text: string, flag: string): number {
  const n = NUMBER.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isFinite(n)) throw new ConfigError(`expected a number, got '${text}'`, flag);
  return n;
}

/**
 * An integer within [min, max] (inclusive). Refuses fractions, values beyond 2⁵³ (which lose
 * precision) and values out of range, naming the flag and the valid range.
 */
export function toInteger(text: string, flag: string, range: IntRange = {}): number {
  const n = toNumber(text, flag);
  const { min = -Number.MAX_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
  const valid = min > -Number.MAX_SAFE_INTEGER && max < Number.MAX_SAFE_INTEGER ? `${min}..${max}` : min > -Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `≤ ${max}`;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`expected an integer ${valid}, got '${text}'`, flag);
  return n;
}

/** "0,2" or "1-3" or "0,2-3" → residual layers, block indices (`flag` --blocks) or positions (--positions). */
export function parseIndexList(text: string, flag = '--layers'): number[] {
  const out: number[] = [];
  const what = flag === '--positions' ? 'position list (like 0-5,33)' : flag === '--blocks' ? 'block list (like 0,2 or 1-3)' : 'layer list (like 0,2 or 1-3)';
  if (text.trim() === '') throw new ConfigError(`is empty; give a ${what}, or leave the flag out for all`, flag);
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new ConfigError(`'${text}' is not a ${what}`, flag);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a) throw new ConfigError(`'${part.trim()}' is an empty range (${a} > ${b})`, flag);
    if (b > 100_000) throw new ConfigError(`${b} is far beyond any model here`, flag);
    for (let l = a; l <= b; l++) {
      if (out.includes(l)) throw new ConfigError(`'${text}' names ${l} twice`, flag);
      out.push(l);
    }
  }
  return out;
}

/** --split: the tasks an analysis draws from. */
export const SPLIT_OPTION = { split: choice("'train' or 'heldout' tasks", SPLITS, 'train') } as const;

/** --threads: ONNX Runtime's intra-op threads (past a few thousand its pool fails to allocate). */
export const THREADS_OPTION = { threads: int('ONNX Runtime threads (default: one per core)', { min: 1, max: 1024 }) } as const;

export const MEMORY_OPTION = {
  'max-memory': bytes('refuse to start when the estimated memory exceeds this (e.g. 8G; default: the memory available now)'),
} as const;
