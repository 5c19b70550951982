/**
 * The CLI's declared options: every converter refuses a bad value in one line naming its flag,
 * every default passes its own converter, and a shared flag means the same in every command.
 */
import { describe, expect, it } from 'vitest';
import { type Command, type OptionSpec, given, parse } from '../src/cli/command.js';
import { COMMANDS } from '../src/cli/main.js';
import { ConfigError } from '../src/errors.js';

const converted = (cmd: Command) => Object.entries(cmd.options as Record<string, OptionSpec>).filter(([, o]) => o.convert);

describe('declared CLI options', () => {
  const cases = COMMANDS.flatMap((cmd) => converted(cmd).map(([flag]) => [cmd.name, flag, cmd] as const));

  it('cover the commands: most options convert their text', () => {
    expect(COMMANDS.length).toBeGreaterThanOrEqual(13);
    expect(cases.length).toBeGreaterThan(60);
  });

  it.each(cases.map(([name, flag, cmd]) => [`${name} --${flag}`, flag, cmd] as const))('%s refuses a bad value at parse time, in one line naming the flag', (_, flag, cmd) => {
    let error: unknown;
    try {
      parse(cmd, [`--${flag}`, '(']);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message.startsWith(`--${flag}: `), message).toBe(true);
    expect(message).not.toContain('\n');
  });

  it('give every default as its own converter would read it', () => {
    let checked = 0;
    for (const cmd of COMMANDS) {
      for (const [flag, o] of converted(cmd)) {
        if (o.default === undefined) continue;
        const text = Array.isArray(o.default) ? o.default.join(',') : String(o.default);
        expect(o.convert!(text, `--${flag}`), `${cmd.name} --${flag}`).toEqual(o.default);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('--layers is residual layer ℓ and --blocks is block indices, in every command that takes them', () => {
    const takes = (flag: string) => COMMANDS.filter((c) => flag in c.options);
    expect(takes('layers').map((c) => c.name).sort()).toEqual(['fv', 'locality', 'tv-search']);
    expect(takes('blocks').map((c) => c.name).sort()).toEqual(['cache', 'patch']);
    for (const c of takes('layers')) {
      expect(parse(c, ['--layers', '0-2,4']).values.layers).toEqual([0, 1, 2, 4]);
      expect((c.options.layers as OptionSpec).description).toMatch(/layers/);
      expect((c.options.layers as OptionSpec).description).not.toMatch(/block/);
    }
    for (const c of takes('blocks')) {
      expect(parse(c, ['--blocks', '1-2']).values.blocks).toEqual([1, 2]);
      expect((c.options.blocks as OptionSpec).description).toMatch(/block indices/);
    }
  });

  it('fills defaults, keeps what was typed apart from them, and converts repeated flags', () => {
    const search = COMMANDS.find((c) => c.name === 'tv-search')!;
    const { values } = parse(search, ['m.onnx', '--prompts', '4']);
    expect(values.prompts).toBe(4);
    expect(values.queries).toBe(64);
    expect(values.mode).toBe('replace');
    expect(values.center).toBe(false);
    expect(given(values, 'prompts')).toBe(true);
    expect(given(values, 'queries')).toBe(false);
    const evalCmd = COMMANDS.find((c) => c.name === 'eval')!;
    expect(parse(evalCmd, ['--group', 'a=x', '--group', 'b=y']).values.group).toEqual(['a=x', 'b=y']);
  });

  it("says in one line how to give a value that starts with a dash, and takes it that way", () => {
    const search = COMMANDS.find((c) => c.name === 'tv-search')!;
    let message = '';
    try {
      parse(search, ['m.onnx', '--seed', '-1']);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/--seed.*'--seed=-XYZ'/);
    expect(message).not.toContain('\n');
    expect(() => parse(search, ['m.onnx', '--seed=-1'])).toThrow(ConfigError); // a seed is ≥ 0: the value now reaches its converter
  });
});
