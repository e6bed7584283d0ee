/**
 * The import graph runs one way (docs/ARCHITECTURE.md): a module may import from its own folder
 * and from the layers below it, never from a layer above. The library never imports the CLI.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { it } from 'node:test';
import { REPO_ROOT } from './helpers/fixtures.js';

/** Layers, lowest first; a folder may import any folder of a lower or equal-numbered layer except above. */
const LAYERS: Record<string, number> = {
  'errors.ts': 0,
  'random.ts': 0,
  'options.ts': 0,
  io: 0,
  engine: 1,
  hierarchy: 1,
  data: 2,
  losses: 2,
  models: 3,
  eval: 4,
  train: 5,
  run: 6,
  report: 7,
  search: 7,
  catalogue: 8,
  store: 8,
  serve: 9,
  web: 9,
  experiments: 9,
  cli: 10,
  'index.ts': 11,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

it('imports only go down the layers (data/hierarchy/losses ← models ← train/eval ← run/report ← cli)', () => {
  const src = resolve(REPO_ROOT, 'src');
  const violations: string[] = [];
  for (const file of sources(src)) {
    const from = relative(src, file).split('/')[0];
    assert.ok(from in LAYERS, `src/${from} has no layer in test/architecture.test.ts`);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)) {
      const target = relative(src, resolve(dirname(file), match[1]))
        .split('/')[0]
        .replace(/\.js$/, '.ts');
      if (target === from) continue;
      assert.ok(target in LAYERS, `${relative(src, file)} imports ${match[1]} outside src/`);
      if (LAYERS[target] > LAYERS[from]) violations.push(`${relative(src, file)} → ${match[1]}`);
    }
  }
  assert.deepEqual(violations, [], `imports that run up the layers:\n${violations.join('\n')}`);
});

/** Placement, calibration, query embedding and duplicate finding are called only by the Catalogue. */
const USE_SIDE_CALLS = /(?<![.\w])(calibrate|predictPath|embedQueryImage|openIndexEncoder|findDuplicates)\(/;

it('no query or calibration code outside the Catalogue (src/catalogue; the browser twin is web/catalogue.ts)', () => {
  const src = resolve(REPO_ROOT, 'src');
  const violations: string[] = [];
  for (const file of sources(src)) {
    const path = relative(src, file);
    if (path.startsWith('catalogue/') || path === 'web/catalogue.ts') continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const code = line.trim();
        // definitions (export function calibrate) and doc comments are not calls
        if (
          code.startsWith('*') ||
          code.startsWith('/*') ||
          code.startsWith('//') ||
          /\bfunction\s/.test(code)
        )
          return;
        if (USE_SIDE_CALLS.test(code)) violations.push(`${path}:${i + 1}: ${code}`);
      });
  }
  assert.deepEqual(
    violations,
    [],
    `query or calibration code outside src/catalogue:\n${violations.join('\n')}`,
  );
});

it('the CLI never imports tfjs (it calls the library, which owns the backend)', () => {
  const cli = resolve(REPO_ROOT, 'src', 'cli');
  const violations = sources(cli).filter((file) => /['"]@tensorflow\//.test(readFileSync(file, 'utf8')));
  assert.deepEqual(
    violations.map((f) => relative(cli, f)),
    [],
    'CLI files that import @tensorflow/* directly',
  );
});

it('only src/data reads --data: src/search and src/serve take a DataSource and never parse or read one', () => {
  const src = resolve(REPO_ROOT, 'src');
  // the readers behind --data, and the parser itself: src/data's, called by training and the CLI
  const readers = ['dataset', 'featureTable', 'manifest', 'imageFolder', 'fashionMnist', 'idx', 'npy'];
  const violations: string[] = [];
  for (const folder of ['search', 'serve']) {
    for (const file of sources(join(src, folder))) {
      const name = relative(src, file);
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)) {
        const target = relative(src, resolve(dirname(file), match[1])).replace(/\.js$/, '');
        if (readers.some((r) => target === `data/${r}`)) violations.push(`${name} imports ${match[1]}`);
      }
      for (const call of ['resolveDataSource(', 'dataSourceOptions(', 'parseInputSource'])
        if (text.includes(call)) violations.push(`${name} calls ${call}`);
      if (/import \{[^}]*\b(readdir|stat)\b[^}]*\} from 'node:fs/.test(text))
        violations.push(
          `${name} lists or stats files (what --data names is resolved in src/data/sources.ts)`,
        );
    }
  }
  assert.deepEqual(violations, [], `--data read outside src/data:\n${violations.join('\n')}`);
});
