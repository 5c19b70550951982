/** The shape of a CLI subcommand, and the parsing and error handling they share. */
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';

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
    for (const [k, o] of Object.entries(options)) if (values[k] === undefined && o.default !== undefined) (values as Record<string, unknown>)[k] = o.default;
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (e) {
    throw new ConfigError(`${(e as Error).message.split('\n')[0]}. See 'tvlens ${cmd.name} --help'`);
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

/** A numeric option. */
export function numberOption(values: Record<string, unknown>, key: string): number | undefined {
  const v = values[key];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n)) throw new ConfigError(`expected a number, got '${v}'`, `--${key}`);
  return n;
}
