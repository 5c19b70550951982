/**
 * The task universe (which tasks exist and which are held out) is fixed by cfg.seed alone. Each
 * part of it draws from its own generator, so changing one part (say, the number of train tasks)
 * leaves the others as they were.
 */
import { Rng } from '../util/rng.js';
import type { TaskConfig } from './config.js';

export function universeRng(cfg: TaskConfig, part: string): Rng {
  let h = 0x811c9dc5; // FNV-1a of the part's name
  for (const c of part) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return new Rng((cfg.seed ^ h) >>> 0);
}
