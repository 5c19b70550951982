#!/usr/bin/env node
/**
 * `tvlens <command>`: one entry point. A user's mistake (a TvlensError, or a file-system error on
 * their path) becomes one line on stderr and exit code 1; anything else is a bug, reported the
 * same way with exit code 70 and a hint to rerun with TVLENS_DEBUG=1.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { userErrorLine } from '../errors.js';
import { cleanUpOnSignals } from '../util/cleanup.js';
import { type Command, help, parse } from './command.js';
import { cacheCommand, cacheInfoCommand } from './cache.js';
import { hooksCommand } from './hooks.js';
import { trainCommand } from './train.js';
import { tvpCommand } from './tvp.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { reportCommand } from './report.js';
import { tvSearchCommand } from './tv-search.js';
import { patchCommand } from './patch.js';
import { localityCommand } from './locality.js';
import { fvCommand } from './fv.js';
import { studyCommand } from './study.js';

export const COMMANDS: readonly Command[] = [demoCommand, trainCommand, tvpCommand, evalCommand, hooksCommand, cacheCommand, cacheInfoCommand, tvSearchCommand, patchCommand, fvCommand, localityCommand, studyCommand, reportCommand];

function usage(): string {
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`);
  return `tvlens: task vectors in in-context learning\n\nUsage: tvlens <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'tvlens <command> --help' for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 1;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`tvlens: unknown command '${name}'. Should be one of: ${COMMANDS.map((c) => c.name).join(', ')}\n`);
    return 1;
  }
  try {
    const { values, positionals } = parse(cmd, rest);
    if (values.help) {
      process.stdout.write(help(cmd));
      return 0;
    }
    await cmd.run(values, positionals);
    return 0;
  } catch (e) {
    const line = userErrorLine(e);
    if (line !== null) {
      process.stderr.write(`tvlens ${name}: error: ${line}\n`);
      return 1;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`tvlens ${name}: internal error: ${msg.split('\n')[0]} (rerun with TVLENS_DEBUG=1 for the stack)\n`);
    if (process.env.TVLENS_DEBUG) console.error(e);
    return 70;
  }
}

/** Whether this module is the process's entry script (not imported, as the tests do). */
function isEntry(): boolean {
  try {
    return !!process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  cleanUpOnSignals();
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
