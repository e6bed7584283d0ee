/**
 * Fashion-MNIST's `T-shirt/top` holds the path separator: through the real CLI it is written
 * escaped (`Clothes/Tops/T-shirt\/top`) in JSON, text and JSONL output, and that text is accepted
 * back by `--within` and by a CSV label column.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { cli, hasNoStack, SMALL_RUN } from '../helpers/cli.js';
import { tempRuns } from '../helpers/train.js';

const TSHIRT = 'Clothes/Tops/T-shirt\\/top';

describe('label paths with the separator in a name, through the CLI', () => {
  let dir: string;
  let run: string;
  let index: string;
  before(async () => {
    dir = await tempRuns();
    run = join(dir, 'run');
    const t = cli(['train', ...SMALL_RUN, '--epochs', '1', '--out', run]);
    assert.equal(t.status, 0, t.stderr);
    index = join(dir, 'fm.index');
    const i = cli([
      'index',
      run,
      '--data',
      'fashion-mnist:train',
      '--data-dir',
      EMBEDDED_FASHION_MNIST_DIR,
      '--limit',
      '300',
      '--out',
      index,
      '--backend',
      'wasm',
    ]);
    assert.equal(i.status, 0, i.stderr);
    // progress on stderr even when it is a pipe: the embedding at each tenth, then the write
    assert.match(i.stderr, /^index: embedding 300\/300$/m);
    assert.match(i.stderr, /^index: writing .*fm\.index$/m);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('search --within T-shirt\\/top: every hit is a T-shirt, labelled escaped; the label text goes back in', () => {
    const r = cli([
      'search',
      index,
      '--id',
      '0',
      '--k',
      '5',
      '--within',
      TSHIRT,
      '--json',
      '--backend',
      'wasm',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const hits = JSON.parse(r.stdout).results as { label: string }[];
    assert.equal(hits.length, 5);
    for (const hit of hits) assert.equal(hit.label, TSHIRT);
    // the printed label, fed back as --within, names the same node
    const again = cli([
      'search',
      index,
      '--id',
      '0',
      '--k',
      '5',
      '--within',
      hits[0].label,
      '--backend',
      'wasm',
    ]);
    assert.equal(again.status, 0, again.stderr);
    assert.ok(again.stdout.includes(TSHIRT), again.stdout);
    // the class alone as a family-level path is still the family
    const family = cli([
      'search',
      index,
      '--id',
      '0',
      '--k',
      '3',
      '--within',
      'Clothes/Tops',
      '--json',
      '--backend',
      'wasm',
    ]);
    assert.equal(family.status, 0, family.stderr);
    // unescaped, the name is four segments: a one-line error, no stack
    const bad = cli([
      'search',
      index,
      '--id',
      '0',
      '--within',
      'Clothes/Tops/T-shirt/top',
      '--backend',
      'wasm',
    ]);
    assert.equal(bad.status, 1);
    assert.ok(hasNoStack(bad.stderr), bad.stderr);
    assert.match(bad.stderr, /must be a label path of 1 to 3 levels/);
  });

  it('embed writes escaped labels; a CSV with them trains on a tree that holds T-shirt/top', async () => {
    const out = join(dir, 'test.jsonl');
    const e = cli(['embed', run, '--out', out, '--backend', 'wasm']);
    assert.equal(e.status, 0, e.stderr);
    const lines = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { label: string; embedding: number[] });
    const labels = new Set(lines.map((l) => l.label));
    assert.ok(labels.has(TSHIRT), [...labels].join(', '));
    // those labels and embeddings as a CSV feature table, read back by train
    const csv = join(dir, 'table.csv');
    const dim = lines[0].embedding.length;
    const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
    await writeFile(
      csv,
      [
        [...Array.from({ length: dim }, (_, k) => `f${k}`), 'label'].join(','),
        ...lines.map((l) => [...l.embedding.map((v) => v.toFixed(5)), quote(l.label)].join(',')),
      ].join('\n'),
    );
    const tableRun = join(dir, 'table-run');
    const t = cli([
      'train',
      '--data',
      csv,
      '--encoder',
      'mlp',
      '--epochs',
      '1',
      '--batch-size',
      '32',
      '--backend',
      'wasm',
      '--out',
      tableRun,
    ]);
    assert.equal(t.status, 0, t.stderr);
    const tree = await readFile(join(tableRun, 'labelTree.json'), 'utf8');
    assert.ok(tree.includes('"T-shirt/top"'), tree.slice(0, 400));
    assert.equal((JSON.parse(tree) as { levelSizes?: number[] }).levelSizes?.length ?? 3, 3);
  });
});
