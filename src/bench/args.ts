/** The bench's command line (main.ts): groups, --quick, and which background processes to pause. */
import { FULL, QUICK, type Repeats } from './timing.js';

export interface BenchArgs {
  readonly groups: readonly string[];
  readonly repeats: Repeats;
  readonly pause: readonly string[];
  /** Where `scale` writes its curve (scale.json, scale.svg); nowhere when absent. */
  readonly out?: string;
}

/** `groups` run by default, `extra` only when named. */
export function parseBenchArgs(argv: readonly string[], groups: readonly string[], extra: readonly string[] = []): BenchArgs {
  let pause: string[] = ['study'];
  const chosen: string[] = [];
  let quick = false;
  let timed: number | null = null;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--no-pause') pause = [];
    else if (a === '--repeats') {
      timed = Number(argv[++i]);
      if (!(Number.isInteger(timed) && timed >= 1)) throw new Error('--repeats takes a whole number ≥ 1 (the timed repeats of each figure)');
    }
    else if (a === '--pause') {
      const v = argv[++i];
      if (!v || v.startsWith('--')) throw new Error('--pause needs a comma-separated list of tvlens subcommands, e.g. --pause study,train');
      pause = v.split(',').filter((s) => s !== '');
    } else if (a === '--out') {
      out = argv[++i];
      if (!out || out.startsWith('--')) throw new Error('--out needs a folder for the scale curve, e.g. --out docs/bench');
    } else if (groups.includes(a) || extra.includes(a)) chosen.push(a);
    else throw new Error(`unknown bench group or flag '${a}'. Should be one of: ${[...groups, ...extra].join(', ')}, --quick, --repeats <n>, --no-pause, --pause <subcommands>, --out <folder>`);
  }
  const repeats = quick ? QUICK : FULL;
  return { groups: chosen.length ? chosen : groups, repeats: timed ? { ...repeats, timed } : repeats, pause, ...(out ? { out } : {}) };
}
