/**
 * Pausing a background study while the bench runs. A study training on the same two cores halves
 * every timing and moves every ratio, so the bench stops it (SIGSTOP) for as long as it runs and
 * lets it go on (SIGCONT) when it exits: normally, on an error, on SIGINT or SIGTERM. A stopped
 * process loses nothing; it resumes where it was. `--no-pause` turns this off.
 *
 * Which processes: those whose command line runs tvlens (`tvlens`, or a `…/cli/main.js`) with one
 * of the given subcommands (default: `study`), never this process or its parents.
 */
import fs from 'node:fs';

export interface PausedProcess {
  readonly pid: number;
  readonly command: string;
}

/** The argv of a process, or null when it has gone or cannot be read. */
function commandLine(pid: number): string[] | null {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((a) => a !== '');
  } catch {
    return null;
  }
}

function parentOf(pid: number): number | null {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so split after the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** Whether an argv runs tvlens with one of `subcommands` (the first argument after the entry point). */
export function runsTvlens(argv: readonly string[], subcommands: readonly string[]): boolean {
  const entry = argv.findIndex((a) => /(^|\/)tvlens$/.test(a) || /(^|\/)cli\/main\.js$/.test(a));
  return entry >= 0 && subcommands.includes(argv[entry + 1] ?? '');
}

/** The processes running tvlens with one of `subcommands`, other than this one and its parents. */
export function findTvlensProcesses(subcommands: readonly string[]): PausedProcess[] {
  if (!fs.existsSync('/proc/self/cmdline')) return []; // not Linux: nothing found, nothing paused
  const mine = new Set<number>();
  for (let p: number | null = process.pid; p && p > 1 && !mine.has(p); p = parentOf(p)) mine.add(p);
  const found: PausedProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || mine.has(pid)) continue;
    const argv = commandLine(pid);
    if (argv && runsTvlens(argv, subcommands)) found.push({ pid, command: argv.join(' ').slice(0, 200) });
  }
  return found;
}

/** Stops the tvlens processes running one of `subcommands` until this process exits (pauseProcesses). */
export function pauseBackground(subcommands: readonly string[]): Paused {
  return pauseProcesses(subcommands.length ? findTvlensProcesses(subcommands) : []);
}

export interface Paused {
  readonly paused: readonly PausedProcess[];
  /** Continues them now (it runs by itself when this process exits). */
  readonly resume: () => void;
  /** Stops them again: a child that paused them itself continued them when it ended. */
  readonly stopAgain: () => void;
}

/**
 * Stops the given processes and arranges for them to continue when this process exits, however it
 * exits (normally, by an error, SIGINT, SIGTERM or SIGHUP; only SIGKILL cannot be caught, and then
 * `kill -CONT <pid>` continues them). Returns what it stopped.
 */
export function pauseProcesses(processes: readonly PausedProcess[]): Paused {
  const stop = (list: readonly PausedProcess[]) =>
    list.filter((p) => {
      try {
        process.kill(p.pid, 'SIGSTOP');
        return true;
      } catch {
        return false; // gone already, or not ours to signal: nothing to pause
      }
    });
  const paused = stop(processes);
  let resumed = false;
  const resume = () => {
    if (resumed) return;
    resumed = true;
    for (const p of paused) {
      try {
        process.kill(p.pid, 'SIGCONT');
      } catch {
        // it ended while stopped (killed by someone else): nothing to continue
      }
    }
  };
  if (paused.length) {
    process.on('exit', resume);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        resume();
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    }
  }
  // Only a process whose command line is still the one paused: an ended study's pid may be reused.
  const same = (p: PausedProcess) => commandLine(p.pid)?.join(' ').slice(0, 200) === p.command;
  const stopAgain = () => {
    if (!resumed) stop(paused.filter(same));
  };
  return { paused, resume, stopAgain };
}
