/** The shape of a CLI subcommand, and the parsing and error handling they share. */
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { parseBytes } from '../util/memory.js';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly description: string;
  readonly default?: string | boolean;
  readonly multiple?: boolean;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  readonly run: (values: Record<string, string | boolean | string[] | undefined>, positionals: string[]) => Promise<void>;
}

/** Options every command takes. */
export const COMMON: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: 'print machine-readable JSON on stdout instead of text' },
  help: { type: 'boolean', description: 'show this help' },
};

export function parse(cmd: Command, argv: string[]): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  const options = { ...COMMON, ...cmd.options };
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type, multiple: o.multiple ?? false }])),
      allowPositionals: true,
      strict: true,
    });
    givenFlags.set(values, new Set(Object.keys(values)));
    for (const [k, o] of Object.entries(options)) if (values[k] === undefined && o.default !== undefined) (values as Record<string, unknown>)[k] = o.default;
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (e) {
    throw new ConfigError(`${(e as Error).message.split('\n')[0]}. See 'tvlens ${cmd.name} --help'`);
  }
}

/** The flags a user typed, per parsed values object (defaults are filled in after). */
const givenFlags = new WeakMap<object, ReadonlySet<string>>();

/** Whether the user typed `--key` (as opposed to its default being filled in). */
export function given(values: Record<string, unknown>, key: string): boolean {
  return givenFlags.get(values)?.has(key) ?? values[key] !== undefined;
}

/** The flags that say how prompts are drawn from a task config: with --prompts-file nothing is drawn. */
const DRAWING_FLAGS = ['prompts', 'queries', 'dummies', 'shots', 'demos', 'split', 'tasks'] as const;

/** Refuses a drawing flag the user typed beside --prompts-file, where it would be silently ignored. */
export function refuseDrawingFlags(values: Record<string, unknown>, flags: readonly string[] = DRAWING_FLAGS): void {
  for (const flag of flags) {
    if (given(values, flag)) throw new ConfigError(`draws prompts from a task; with --prompts-file the file's prompts are used, all of them: drop --${flag}`, `--${flag}`);
  }
}

export function help(cmd: Command): string {
  const options = { ...cmd.options, ...COMMON };
  const lines = Object.entries(options).map(([k, o]) => {
    const flag = o.type === 'string' ? `--${k} <value>` : `--${k}`;
    const def = o.default !== undefined && o.type === 'string' ? ` (default: ${o.default})` : '';
    return `  ${flag.padEnd(28)} ${o.description}${def}`;
  });
  return `tvlens ${cmd.name}: ${cmd.summary}\n\nUsage: ${cmd.usage}\n\nOptions:\n${lines.join('\n')}\n`;
}

/** A string option that must be present. */
export function required(values: Record<string, unknown>, key: string): string {
  const v = values[key];
  if (typeof v !== 'string' || v === '') throw new ConfigError(`is required`, `--${key}`);
  return v;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A numeric option: a decimal number (an empty value, `0x10` or `NaN` is refused). */
export function numberOption(values: Record<string, unknown>, key: string): number | undefined {
  const v = values[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && NUMBER.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new ConfigError(`expected a number, got '${v}'`, `--${key}`);
  return n;
}

/** The largest seed: seeds are 32-bit (xoshiro128** is seeded from 32 bits), so larger ones would alias smaller ones. */
export const MAX_SEED = 2 ** 32 - 1;

/**
 * An integer option within [min, max] (inclusive). Refuses fractions, values beyond 2⁵³ (which
 * lose precision) and values out of range, naming the flag and the valid range.
 */
export function integerOption(values: Record<string, unknown>, key: string, range: { min?: number; max?: number } = {}): number | undefined {
  const n = numberOption(values, key);
  if (n === undefined) return undefined;
  const { min = -Number.MAX_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
  const valid = min > -Number.MAX_SAFE_INTEGER && max < Number.MAX_SAFE_INTEGER ? `${min}..${max}` : min > -Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `≤ ${max}`;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ConfigError(`expected an integer ${valid}, got '${values[key]}'`, `--${key}`);
  return n;
}

/** `--seed`: an integer 0..2³²−1. */
export const seedOption = (values: Record<string, unknown>, key = 'seed'): number | undefined => integerOption(values, key, { min: 0, max: MAX_SEED });

/** A comma-separated list of integers within a range ("2,3"). */
export function integerListOption(values: Record<string, unknown>, key: string, range: { min?: number; max?: number } = {}): number[] | undefined {
  const v = values[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') throw new ConfigError(`expected a comma-separated list of integers, got '${v}'`, `--${key}`);
  return v.split(',').map((part) => integerOption({ [key]: part.trim() }, key, range)!);
}

/** `--max-memory`: bytes, with an optional unit (8G, 512M). */
export function memoryOption(values: Record<string, unknown>, key = 'max-memory'): number | undefined {
  const v = values[key];
  return typeof v === 'string' ? parseBytes(v, `--${key}`) : undefined;
}

export const MEMORY_OPTION: Readonly<Record<string, OptionSpec>> = {
  'max-memory': { type: 'string', description: 'refuse to start when the estimated memory exceeds this (e.g. 8G; default: the memory available now)' },
};
