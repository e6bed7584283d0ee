import { ContrastiveError } from './errors.js';

/**
 * One option, described once: a CLI command's `--help`, its flag parsing and a JSON config file's
 * validation all come from this (library code; the CLI builds on it).
 */
export interface OptionSpec {
  /** camelCase option name; the flag is its kebab-case form (`baseTemperature` ↔ `--base-temperature`). */
  name: string;
  type: 'string' | 'number' | 'integer' | 'boolean' | 'list';
  /** Allowed values (for `string` and `list`). */
  choices?: readonly string[];
  default?: string | number | boolean | readonly string[];
  doc: string;
}

export type OptionValue = string | number | boolean | string[];

/** `--backend`, shared by every command that computes. */
export const BACKEND_OPTION = {
  name: 'backend',
  type: 'string',
  choices: ['auto', 'tensorflow', 'wasm', 'cpu'],
  default: 'auto',
  doc: 'tfjs backend (auto: tfjs-node if installed, else wasm, else cpu)',
} as const satisfies OptionSpec;

export const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Converts and validates one raw value (from a flag or a config file) by its spec. */
export function convertOption(where: string, option: OptionSpec, raw: unknown): OptionValue {
  const flag = `--${kebab(option.name)}`;
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
  }
}
