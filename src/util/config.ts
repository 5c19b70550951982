/**
 * Typed configs with defaults in one frozen object. `resolveConfig` merges user values over the
 * defaults and rejects unknown or ill-typed keys by name.
 */
import { ConfigError } from '../errors.js';

type Plain = Record<string, unknown>;

export function resolveConfig<T extends object>(defaults: Readonly<T>, user: unknown, where: string): T {
  if (user === undefined || user === null) return structuredClone(defaults) as T;
  if (typeof user !== 'object' || Array.isArray(user)) throw new ConfigError(`expected an object, got ${describe(user)}`, where);
  const out = structuredClone(defaults) as Plain;
  for (const [key, value] of Object.entries(user as Plain)) {
    const path = where ? `${where}.${key}` : key;
    if (!(key in defaults)) {
      throw new ConfigError(`unknown key. Should be one of: ${Object.keys(defaults).join(', ')}`, path);
    }
    const def = (defaults as Plain)[key];
    out[key] = checkType(def, value, path);
  }
  return out as T;
}

function checkType(def: unknown, value: unknown, path: string): unknown {
  if (def === null || def === undefined) return value;
  if (Array.isArray(def)) {
    if (!Array.isArray(value)) throw new ConfigError(`expected an array, got ${describe(value)}`, path);
    const proto = def[0];
    return proto === undefined ? value : value.map((v, i) => checkType(proto, v, `${path}[${i}]`));
  }
  if (typeof def === 'object') return resolveConfig(def as Plain, value, path);
  if (typeof value !== typeof def) throw new ConfigError(`expected a ${typeof def}, got ${describe(value)}`, path);
  if (typeof value === 'number' && !Number.isFinite(value)) throw new ConfigError(`expected a finite number, got ${value}`, path);
  return value;
}

/** Checks that `value` is one of `choices`, naming them if not. */
export function oneOf<T extends string>(value: string, choices: readonly T[], path: string): T {
  if (!choices.includes(value as T)) throw new ConfigError(`'${value}' is not valid. Should be one of: ${choices.join(', ')}`, path);
  return value as T;
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : `${typeof v} ${JSON.stringify(v)}`;
}
