/**
 * Patterns that pick job ids (`study --only`): globs, never regular expressions, so no pattern can
 * make the match backtrack without bound. `*` is any run of characters, `?` one character; `|` or
 * `,` separate alternatives; a pattern matches anywhere in the id unless it starts with `^` or ends
 * with `$` (so "baseline|finetune" and "^g_baseline_s0$" mean what they mean as regular expressions).
 * Matching is O(id × pattern) at worst, and both are bounded.
 */
import { ConfigError } from '../errors.js';

const MAX_PATTERN = 1000;

export type IdMatcher = (id: string) => boolean;

export function idMatcher(text: string, flag: string): IdMatcher {
  if (text.length === 0) throw new ConfigError('is empty: give a job-id pattern such as "baseline" or "tvp_*_s0"', flag);
  if (text.length > MAX_PATTERN) throw new ConfigError(`is ${text.length} characters long; at most ${MAX_PATTERN}`, flag);
  const bad = /[()[\]{}+\\]/.exec(text);
  if (bad) throw new ConfigError(`takes job-id globs (* any characters, ? one, | between alternatives, ^ and $ to anchor), not a regular expression: '${bad[0]}' is not allowed`, flag);
  const alternatives = text.split(/[|,]/).map((p) => p.trim());
  if (alternatives.some((p) => p === '' || p === '^' || p === '$' || p === '^$')) throw new ConfigError(`has an empty alternative in '${text}'`, flag);
  const globs = alternatives.map((p) => {
    const start = p.startsWith('^');
    const end = p.endsWith('$') && p.length > (start ? 1 : 0);
    const body = p.slice(start ? 1 : 0, end ? -1 : undefined);
    if (/[$^]/.test(body)) throw new ConfigError(`'^' and '$' anchor a pattern only at its start and end, in '${p}'`, flag);
    return `${start ? '' : '*'}${body}${end ? '' : '*'}`;
  });
  return (id) => globs.some((g) => globMatch(g, id));
}

/** Iterative glob match with one saved star: linear in practice, O(n·m) at worst, never exponential. */
export function globMatch(glob: string, s: string): boolean {
  let [g, i, star, mark] = [0, 0, -1, 0];
  while (i < s.length) {
    if (g < glob.length && (glob[g] === '?' || (glob[g] !== '*' && glob[g] === s[i]))) {
      g++;
      i++;
    } else if (g < glob.length && glob[g] === '*') {
      star = g++;
      mark = i;
    } else if (star >= 0) {
      g = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}
