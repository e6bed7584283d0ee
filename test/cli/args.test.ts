import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { type CommandSpec, commandHelp, defineCommand, parseArgs } from '../../src/cli/args.js';
import { ContrastiveError } from '../../src/errors.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const spec: CommandSpec = {
  name: 'train',
  summary: 'Train a model.',
  positionals: [{ name: 'data', doc: 'dataset' }],
  options: [
    { name: 'method', type: 'string', choices: ['supcon', 'himulcone'], default: 'supcon', doc: 'loss' },
    { name: 'baseTemperature', type: 'number', default: 0.07, doc: 'τ_base' },
    { name: 'epochs', type: 'integer', default: 10, doc: 'epochs' },
    { name: 'resume', type: 'boolean', default: false, doc: 'resume' },
    { name: 'backends', type: 'list', choices: ['cpu', 'wasm'], doc: 'backends' },
  ],
  run: async () => {},
};

describe('parseArgs', () => {
  it('maps kebab-case flags to option names, converts types and fills defaults', () => {
    const parsed = parseArgs(spec, ['fm', '--base-temperature', '0.1', '--resume', '--backends=cpu,wasm']);
    assert.deepEqual(parsed.positionals, ['fm']);
    assert.deepEqual(parsed.options, {
      method: 'supcon',
      baseTemperature: 0.1,
      epochs: 10,
      resume: true,
      backends: ['cpu', 'wasm'],
    });
    assert.deepEqual([...parsed.given].sort(), ['backends', 'baseTemperature', 'resume']);
    assert.equal(parseArgs(spec, ['x', '--no-resume']).options.resume, false);
  });

  it('rejects unknown options with a suggestion, and bad values naming the flag', () => {
    const fails = (argv: string[], pattern: RegExp) =>
      assert.throws(
        () => parseArgs(spec, argv),
        (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message),
      );
    fails(
      ['x', '--base-temprature', '1'],
      /unknown option --base-temprature \(did you mean --base-temperature\?\)/,
    );
    fails(['x', '--epochs', '2.5'], /--epochs must be an integer, but got "2.5"/);
    fails(['x', '--epochs'], /option --epochs needs a value/);
    fails(['x', '--method', 'simclr'], /--method must be one of supcon, himulcone, but got "simclr"/);
    fails(['x', '--backends', 'cpu,gpu'], /--backends must be a list of cpu, wasm/);
    fails([], /missing <data> \(dataset\)/);
    fails(['a', 'b'], /unexpected argument "b"/);
  });

  it('generates --help from the spec', () => {
    const help = commandHelp(spec);
    assert.match(help, /Usage: contrastive train <data> \[options\]/);
    assert.match(help, /--base-temperature <number>\s+τ_base \(default: 0.07\)/);
    assert.match(help, /--method <supcon\|himulcone>/);
  });
});

describe('defineCommand', () => {
  it('hands run the parsed values typed from the option table, defaults filled in', async () => {
    let seen: { k: number; mode: 'a' | 'b'; name?: string; seeds: number[] } | undefined;
    const command = defineCommand({
      name: 'typed',
      summary: 'a typed command',
      options: [
        { name: 'k', type: 'integer', default: 10, min: 1, doc: 'k' },
        { name: 'mode', type: 'string', choices: ['a', 'b'], default: 'a', doc: 'mode' },
        { name: 'name', type: 'string', doc: 'name' },
        { name: 'seeds', type: 'numbers', default: [0], doc: 'seeds' },
      ],
      async run({ options }) {
        // these assignments type-check only if the options are typed from the table
        const k: number = options.k;
        const mode: 'a' | 'b' = options.mode;
        const name: string | undefined = options.name;
        seen = { k, mode, name, seeds: options.seeds };
        return 3;
      },
    });
    const status = await command.run(parseArgs(command, ['--mode', 'b', '--seeds', '1,2']));
    assert.equal(status, 3);
    assert.deepEqual(seen, { k: 10, mode: 'b', name: undefined, seeds: [1, 2] });
    assert.throws(() => parseArgs(command, ['--k', '0']), /--k must be >= 1/);
  });
});

describe('contrastive bin', () => {
  const bin = resolve(REPO_ROOT, 'dist/src/cli/bin.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

  it('prints help and exits 0', () => {
    const r = run('--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, /Commands:[\s\S]*\n {2}doctor +Explain/);
  });

  it('an unknown command or option exits 1 with a one-line error, no stack', () => {
    const r = run('nope');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /unknown command "nope"/);
    const o = run('doctor', '--fast');
    assert.equal(o.status, 1);
    assert.equal(o.stderr.trim(), 'error: contrastive doctor: unknown option --fast; see --help.');
  });

  it('doctor reports the backends and the one runs use', () => {
    const r = run('doctor');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok\s+wasm/);
    assert.match(r.stdout, /ok\s+cpu/);
    assert.match(r.stdout, /runs use: \w+/);
  });
});
