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
  serve: 8,
  store: 8,
  web: 8,
  experiments: 8,
  cli: 9,
  'index.ts': 10,
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
