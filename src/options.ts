import { ContrastiveError } from './errors.js';

/**
 * One option, described once: a CLI command's `--help`, its flag parsing and a JSON config file's
 * validation all come from this (library code; the CLI builds on it).
 */
export interface OptionSpec {
  /** camelCase option name; the flag is its kebab-case form (`baseTemperature` ↔ `--base-temperature`). */
  name: string;
  /** The flag, when it is not the kebab-case name (`labelsPath` ↔ `--labels`). */
  flag?: string;
  /** `list`: comma-separated strings; `numbers`: comma-separated finite numbers. */
  type: 'string' | 'number' | 'integer' | 'boolean' | 'list' | 'numbers';
  /** Allowed values (for `string` and `list`). */
  choices?: readonly string[];
  default?: string | number | boolean | readonly string[] | readonly number[];
  /** `number`/`integer`/`numbers`: the smallest value allowed. */
  min?: number;
  /** `number`/`integer`/`numbers`: the largest value allowed. */
  max?: number;
  doc: string;
}

export type OptionValue = string | number | boolean | string[] | number[];

/** `--backend`, shared by every command that computes. */
export const BACKEND_OPTION = {
  name: 'backend',
  type: 'string',
  choices: ['auto', 'tensorflow', 'wasm', 'cpu'],
  default: 'auto',
  doc: 'tfjs backend (auto: tfjs-node if installed, else wasm, else cpu)',
} as const satisfies OptionSpec;

export const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The flag of an option, without the leading `--`. */
export const flagName = (option: Pick<OptionSpec, 'name' | 'flag'>) => option.flag ?? kebab(option.name);

type ValueOf<S extends OptionSpec> = S extends { choices: readonly (infer C)[] }
  ? S['type'] extends 'list'
    ? C[]
    : C
  : S['type'] extends 'number' | 'integer'
    ? number
    : S['type'] extends 'boolean'
      ? boolean
      : S['type'] extends 'list'
        ? string[]
        : S['type'] extends 'numbers'
          ? number[]
          : string;

/**
 * The parsed values of a table of options, typed from the table itself: options with a default
 * are always present, the others optional.
 */
export type OptionValues<T extends readonly OptionSpec[]> = {
  [S in T[number] as S extends { default: unknown } ? S['name'] : never]: ValueOf<S>;
} & {
  [S in T[number] as S extends { default: unknown } ? never : S['name']]?: ValueOf<S>;
};

/** The options of `table` whose names are listed, in the table's order (for commands that share options). */
export function pickOptions<T extends readonly OptionSpec[], N extends T[number]['name']>(
  table: T,
  names: readonly N[],
): Extract<T[number], { name: N }>[] {
  const missing = names.filter((n) => !table.some((o) => o.name === n));
  if (missing.length > 0)
    throw new ContrastiveError(`pickOptions: no option ${missing.join(', ')} in the table.`);
  return table.filter((o) => (names as readonly string[]).includes(o.name)) as Extract<
    T[number],
    { name: N }
  >[];
}

/** Converts and validates one raw value (from a flag or a config file) by its spec. */
export function convertOption(where: string, option: OptionSpec, raw: unknown): OptionValue {
  const flag = `--${flagName(option)}`;
  const fail = (expected: string): never => {
    throw new ContrastiveError(`${where}: ${flag} must be ${expected}, but got ${JSON.stringify(raw)}.`);
  };
  switch (option.type) {
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
      return fail('true or false');
    case 'number':
    case 'integer': {
      const value =
        typeof raw === 'number'
          ? raw
          : typeof raw === 'string' && raw.trim() !== ''
            ? Number(raw)
            : Number.NaN;
      if (!Number.isFinite(value)) return fail('a number');
      if (option.type === 'integer' && !Number.isInteger(value)) return fail('an integer');
      if (option.min !== undefined && value < option.min) return fail(`>= ${option.min}`);
      if (option.max !== undefined && value > option.max) return fail(`<= ${option.max}`);
      return value;
    }
    case 'string': {
      if (typeof raw !== 'string') return fail('a string');
      if (option.choices && !option.choices.includes(raw)) return fail(`one of ${option.choices.join(', ')}`);
      return raw;
    }
    case 'list': {
      const items = Array.isArray(raw)
        ? raw.map(String)
        : typeof raw === 'string'
          ? raw.split(',').filter(Boolean)
          : fail('a comma-separated list');
      for (const item of items) {
        if (option.choices && !option.choices.includes(item)) fail(`a list of ${option.choices.join(', ')}`);
      }
      return items;
    }
    case 'numbers': {
      const items = Array.isArray(raw)
        ? raw
        : typeof raw === 'string'
          ? raw.split(',').filter((t) => t.trim() !== '')
          : fail('a comma-separated list of numbers');
      if (items.length === 0) return fail('a non-empty comma-separated list of numbers');
      return items.map((item) => {
        const value = typeof item === 'number' ? item : typeof item === 'string' ? Number(item) : Number.NaN;
        if (!Number.isFinite(value))
          fail(`a comma-separated list of numbers (${JSON.stringify(item)} is not one)`);
        if (option.min !== undefined && value < option.min) fail(`a list of numbers >= ${option.min}`);
        if (option.max !== undefined && value > option.max) fail(`a list of numbers <= ${option.max}`);
        return value;
      });
    }
  }
}
