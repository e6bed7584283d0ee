import { ContrastiveError } from '../errors.js';
import { closestName } from '../hierarchy/closest.js';
import { convertOption, flagName, type OptionSpec, type OptionValue, type OptionValues } from '../options.js';

export { BACKEND_OPTION, convertOption, kebab, type OptionSpec, type OptionValue } from '../options.js';

/** A positional argument. */
export interface PositionalSpec {
  name: string;
  doc: string;
  /** Takes every remaining argument. */
  variadic?: boolean;
  optional?: boolean;
}

/** A CLI command: its spec and the function it runs with the parsed arguments. */
export interface CommandSpec {
  name: string;
  summary: string;
  positionals?: readonly PositionalSpec[];
  options: readonly OptionSpec[];
  /** Runs the command; resolves to its exit status (default 0). */
  run(parsed: ParsedArgs): Promise<number | undefined>;
}

export interface ParsedArgs {
  positionals: string[];
  options: Record<string, OptionValue>;
  /** Names of the options given on the command line (not defaulted). */
  given: Set<string>;
}

/** What a command defined with {@link defineCommand} receives: its options typed from its own table. */
export interface TypedArgs<O extends readonly OptionSpec[]> {
  positionals: string[];
  options: OptionValues<O>;
  given: Set<string>;
}

/**
 * Defines a command whose `run` sees its options typed from the option table (no casts): an option
 * with a default is always present, one without is optional, `choices` narrow to their union.
 * Declare shared option blocks `as const satisfies readonly OptionSpec[]` so their types survive.
 */
export function defineCommand<const O extends readonly OptionSpec[]>(spec: {
  name: string;
  summary: string;
  positionals?: readonly PositionalSpec[];
  options: O;
  run(parsed: TypedArgs<O>): Promise<number | undefined>;
}): CommandSpec {
  return {
    ...spec,
    // parseArgs validated every value against the same table, so the values have these types
    run: (parsed) => spec.run(parsed as unknown as TypedArgs<O>),
  };
}

/** Parses `argv` against a command spec; unknown flags and bad values are errors naming them. */
export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const byFlag = new Map(spec.options.map((o) => [flagName(o), o]));
  const options: Record<string, OptionValue> = {};
  const given = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (!token.startsWith('--') || token === '--') {
      positionals.push(token);
      continue;
    }
    let [flag, inline] = token.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    let negated = false;
    if (!byFlag.has(flag) && flag.startsWith('no-') && byFlag.get(flag.slice(3))?.type === 'boolean') {
      flag = flag.slice(3);
      negated = true;
    }
    const option = byFlag.get(flag);
    if (!option) {
      const hint = closestName(flag, [...byFlag.keys()]);
      throw new ContrastiveError(
        `contrastive ${spec.name}: unknown option --${flag}${hint ? ` (did you mean --${hint}?)` : ''}; see --help.`,
      );
    }
    let raw: string;
    if (option.type === 'boolean') {
      raw = negated ? 'false' : (inline ?? 'true');
    } else if (inline !== undefined) {
      raw = inline;
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) {
        throw new ContrastiveError(
          `contrastive ${spec.name}: option --${flag} needs a value (${option.doc}).`,
        );
      }
      raw = next;
      i++;
    }
    options[option.name] = convertOption(`contrastive ${spec.name}`, option, raw);
    given.add(option.name);
  }
  for (const option of spec.options) {
    if (!(option.name in options) && option.default !== undefined) {
      options[option.name] = Array.isArray(option.default)
        ? [...option.default]
        : (option.default as OptionValue);
    }
  }
  checkPositionals(spec, positionals);
  return { positionals, options, given };
}

function checkPositionals(spec: CommandSpec, positionals: string[]): void {
  const specs = spec.positionals ?? [];
  const required = specs.filter((p) => !p.optional && !p.variadic).length;
  const variadic = specs.some((p) => p.variadic);
  if (positionals.length < required) {
    throw new ContrastiveError(
      `contrastive ${spec.name}: missing <${specs[positionals.length].name}> (${specs[positionals.length].doc}); usage: ${usage(spec)} (see --help).`,
    );
  }
  if (!variadic && positionals.length > specs.length) {
    throw new ContrastiveError(
      `contrastive ${spec.name}: unexpected argument ${JSON.stringify(positionals[specs.length])}.`,
    );
  }
}

/** `contrastive <name> <positional> [options]`. */
function usage(spec: CommandSpec): string {
  return [
    `contrastive ${spec.name}`,
    ...(spec.positionals ?? []).map((p) =>
      p.optional || p.variadic ? `[${p.name}${p.variadic ? '...' : ''}]` : `<${p.name}>`,
    ),
    '[options]',
  ].join(' ');
}

/** The `--help` text of a command, generated from its spec. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: ${usage(spec)}`, '', spec.summary, ''];
  for (const p of spec.positionals ?? []) lines.push(`  ${p.name.padEnd(26)} ${p.doc}`);
  if (spec.positionals?.length) lines.push('');
  lines.push('Options:');
  for (const o of spec.options) {
    const value = o.type === 'boolean' ? '' : o.choices ? ` <${o.choices.join('|')}>` : ` <${o.type}>`;
    const flag = `--${flagName(o)}${value}`;
    const def =
      o.default === undefined
        ? ''
        : ` (default: ${Array.isArray(o.default) ? o.default.join(',') : String(o.default)})`;
    lines.push(`  ${flag.padEnd(26)} ${o.doc}${def}`);
  }
  return lines.join('\n');
}
