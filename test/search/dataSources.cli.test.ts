/**
 * `--data` means the same to `train` and to `index` / `embed`: the real CLI indexes and embeds an
 * image manifest (which the use side once took for a feature table) with the labels training
 * reads from it, and an ambiguous CSV is a one-line error naming `--data-kind`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listTrainingImages } from '../../src/data/dataset.js';
import { train } from '../../src/run/train.js';
import { EmbeddingIndex } from '../../src/search/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { writeFashionPngs } from '../helpers/images.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

describe('one --data for train and index / embed (the real CLI)', () => {
  const bin = resolve(REPO_ROOT, 'dist/src/cli/bin.js');
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [bin, ...args, '--backend', 'wasm'], { encoding: 'utf8', timeout: 300_000 });
  let dir: string;
  let runDir: string;
  let manifest: string;
  before(async () => {
    dir = await tempRuns();
    runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 1, trainLimit: 128, testLimit: 64 }), {
      progress: quietProgress(),
    });
    // a manifest in the run's own tree (Fashion-MNIST's: names with a "/" as level columns)
    const { files, labels } = await writeFashionPngs(dir, 'img', 24);
    const lines = [
      'image,group,family,class,width',
      ...files.map((f, i) => `${f},${labels[i].join(',')},28`),
    ];
    manifest = join(dir, 'items.csv');
    await writeFile(manifest, `${lines.join('\n')}\n`);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('index and embed read a manifest as train does: the same items and labels', async () => {
    const levels = ['--level-columns', 'group,family,class'];
    const out = join(dir, 'items.index');
    const r = cli('index', runDir, '--data', manifest, ...levels, '--out', out, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).labelled, 24);
    const listing = await listTrainingImages({
      data: manifest,
      testData: manifest,
      levelColumns: ['group', 'family', 'class'],
    });
    const index = await EmbeddingIndex.load(out);
    const items = index.items();
    assert.deepEqual(
      items.map((it) => it.source),
      listing.test.files,
    );
    items.forEach((it, i) => {
      assert.equal(it.id, `img/${i}.png`);
      assert.deepEqual(it.label, listing.tree.path(2, listing.test.labels[i * 3 + 2]));
    });
    index.dispose();
    const jsonl = join(dir, 'items.jsonl');
    const e = cli('embed', runDir, '--data', manifest, ...levels, '--limit', '5', '--out', jsonl);
    assert.equal(e.status, 0, e.stderr);
    const rows = (await readFile(jsonl, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      rows.map((row) => [row.id, row.label]),
      items.slice(0, 5).map((it) => [it.id, it.label?.join('/')]),
    );
  });

  it('an ambiguous CSV is a one-line error naming --data-kind, for index and train alike', async () => {
    const both = join(dir, 'both.csv');
    await writeFile(both, 'label,image,f1\nClothes/Tops/Shirt,0.5,0.25\n');
    for (const r of [
      cli('index', runDir, '--data', both, '--out', join(dir, 'x.index')),
      cli('train', '--data', both, '--out', join(dir, 'x-run')),
    ]) {
      assert.equal(r.status, 1, r.stdout);
      // the error is its last line (train prints its engine first), one line, no stack
      const last = r.stderr.trim().split('\n').at(-1) ?? '';
      assert.match(last, /^error: .*ambiguous: .*pass --data-kind manifest or --data-kind table\.$/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });
});
