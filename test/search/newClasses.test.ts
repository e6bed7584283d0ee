/**
 * New classes through the real CLI: a folder with two classes the run never saw indexes (the
 * index holds the run's tree plus the new nodes, marked unseen), searches within them, groups by
 * them, reports retrieval on them, and predicts items of a third unseen class at their parent.
 * Also: `search --image` against a run trained on a feature table is a one-line error.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { catalogueTree } from '../../src/catalogue/newClasses.js';
import { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashionMnist.js';
import { LabelTree } from '../../src/hierarchy/labelTree.js';
import { Rng } from '../../src/random.js';
import { train } from '../../src/run/train.js';
import { EmbeddingIndex } from '../../src/search/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

const bin = resolve(REPO_ROOT, 'dist/src/cli/bin.js');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args, '--backend', 'wasm'], { encoding: 'utf8', timeout: 300_000 });

it('catalogueTree keeps the run tree when every label is known, and marks new nodes (parents first) otherwise', () => {
  const run = LabelTree.fromPaths(['Clothes/Tops/Shirt', 'Goods/Shoes/Boot'], {
    levelNames: ['a', 'b', 'c'],
  });
  assert.equal(catalogueTree(run, ['Clothes/Tops/Shirt', null]).tree, run);
  const { tree, unseen } = catalogueTree(run, ['Goods/Shoes/Clog', 'Toys/Cars/Truck', 'Toys']);
  assert.deepEqual(tree.levelNames, ['a', 'b', 'c']);
  assert.deepEqual(
    unseen,
    [
      ['Toys'],
      ['Toys', 'Cars'],
      ['Toys', 'Toys'],
      ['Goods', 'Shoes', 'Clog'],
      ['Toys', 'Cars', 'Truck'],
      ['Toys', 'Toys', 'Toys'],
    ].sort((x, y) => x.length - y.length),
  );
  assert.throws(
    () => catalogueTree(run, ['Goods/Shoes/Boot/Left']),
    /has 4 levels, but the run's tree has 3/,
  );
});

describe('contrastive index / search / predict with classes the run never saw', () => {
  let dir: string;
  let runDir: string;
  let indexPath: string;
  const folder = () => join(dir, 'catalogue');
  const queries = () => join(dir, 'queries');
  let bagRows: number[] = [];
  const idOf = (className: string) => `Goods/Accessories/${className}/${bagRows[0]}.png`;
  before(async () => {
    dir = await tempRuns();
    runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 2 }), {
      progress: quietProgress(),
    });
    indexPath = join(dir, 'catalogue.index');
    const data = await loadFashionMnist({ split: 'test', dataDir: EMBEDDED_FASHION_MNIST_DIR });
    const png = (i: number, file: string) =>
      sharp(
        Buffer.from(Array.from(data.images.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255))),
        {
          raw: { width: 28, height: 28, channels: 1 },
        },
      )
        .png()
        .toFile(file);
    const write = async (root: string, path: string[], rows: number[]) => {
      const at = join(root, ...path);
      await mkdir(at, { recursive: true });
      for (const i of rows) await png(i, join(at, `${i}.png`));
    };
    const rowsOf = (name: string) =>
      Array.from({ length: data.shape[0] }, (_, i) => i).filter(
        (i) => data.tree.path(2, data.classIds[i])[2] === name,
      );
    // known classes, as the run's tree names them
    for (const name of ['Trouser', 'Sneaker', 'Ankle boot', 'Dress']) {
      const rows = rowsOf(name).slice(0, 15);
      await write(folder(), data.tree.path(2, data.classIds[rows[0]]), rows);
    }
    // two new classes under Goods/Accessories, holding the same bag images: any query is exactly as
    // close to one as to the other, so no placement can name one of them with confidence
    const bags = rowsOf('Bag');
    bagRows = bags;
    assert.ok(bags.length >= 30, `${bags.length} bags`);
    await write(folder(), ['Goods', 'Accessories', 'Backpack'], bags.slice(0, 20));
    await write(folder(), ['Goods', 'Accessories', 'Tote'], bags.slice(0, 20));
    // a third new class, never indexed: more bags
    await write(queries(), ['Goods', 'Accessories', 'Clutch'], bags.slice(20, 30));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('index accepts labels beyond the run tree, marks them unseen, and --report prints retrieval on them', async () => {
    const r = cli('index', runDir, '--data', folder(), '--out', indexPath, '--report', '--json');
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.items, 100);
    assert.deepEqual(summary.newNodes.filter((p: string) => p.split('/').length === 3).sort(), [
      'Goods/Accessories/Backpack',
      'Goods/Accessories/Tote',
    ]);
    assert.equal(summary.report.queries, 40);
    assert.deepEqual(
      summary.report.levels.map((l: { levelName: string }) => l.levelName),
      ['group', 'family', 'class'].slice(0, summary.report.levels.length),
    );
    for (const level of summary.report.levels) {
      assert.ok(level.precisionAt1 >= 0 && level.precisionAt1 <= 1);
      assert.ok(level.mapAtR >= 0 && level.mapAtR <= 1);
    }
    const index = await EmbeddingIndex.load(indexPath);
    assert.ok(index.isUnseen(['Goods', 'Accessories', 'Tote']));
    assert.ok(!index.isUnseen(['Goods', 'Accessories']));
    assert.ok(!index.isUnseen(['Goods', 'Shoes', 'Sneaker']));
    const text = cli('index', runDir, '--data', folder(), '--out', indexPath, '--report');
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /2 \w+ classes the run never saw in training .*Goods\/Accessories\/Backpack/);
    assert.match(text.stdout, /retrieval of the 40 items of the new classes/);
    assert.match(text.stdout, /mAP@R/);
  });

  it('search --within a new node stays inside it; --group-by covers the new nodes', () => {
    const any = cli(
      'search',
      indexPath,
      '--id',
      idOf('Backpack'),
      '--k',
      '30',
      '--within',
      'Goods/Accessories/Tote',
      '--json',
    );
    assert.equal(any.status, 0, any.stderr);
    const hits = JSON.parse(any.stdout).results;
    assert.equal(hits.length, 20);
    for (const hit of hits) assert.equal(hit.label, 'Goods/Accessories/Tote');
    const grouped = cli(
      'search',
      indexPath,
      '--id',
      idOf('Tote'),
      '--within',
      'Goods/Accessories',
      '--group-by',
      '2',
      '--k',
      '5',
      '--json',
    );
    assert.equal(grouped.status, 0, grouped.stderr);
    const groups = new Set(JSON.parse(grouped.stdout).results.map((r: { group: string }) => r.group));
    assert.deepEqual([...groups].sort(), ['Goods/Accessories/Backpack', 'Goods/Accessories/Tote']);
  });

  it('predict places items of a third unseen class at their parent, and says what it cannot place', (t) => {
    // target 0.9: a 100-item calibration of a one-epoch run cannot certify 0.95 at the family level
    const r = cli('predict', indexPath, '--data', queries(), '--json', '--target-precision', '0.9');
    assert.equal(r.status, 0, r.stderr);
    const predictions = r.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(predictions.length, 10);
    // never a class: the index holds no Clutch, and Backpack and Tote are indistinguishable
    for (const p of predictions) {
      assert.equal(p.label, 'Goods/Accessories/Clutch');
      assert.ok(p.depth < 3, JSON.stringify(p));
      assert.equal(p.unseenInTraining, false);
    }
    // most stop at their parent (this seed: 8 of 10; two atypical bags are placed elsewhere, still never at a class)
    const atParent = predictions.filter((p) => p.path === 'Goods/Accessories').length;
    t.diagnostic(`placed: ${predictions.map((p) => p.path).join(', ')}`);
    assert.ok(
      atParent >= 8,
      `${atParent} of 10 at Goods/Accessories: ${predictions.map((p) => p.path).join(', ')}`,
    );
    assert.match(r.stderr, /note: placement answers only nodes the index holds examples of/);
    assert.match(r.stderr, /never seen by the model in training \(.*Goods\/Accessories\/Backpack/);
  });
});

describe('contrastive search --image against a run trained on a feature table', () => {
  let dir: string;
  before(async () => {
    dir = await tempRuns();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is a one-line error naming the run, not a stack', async () => {
    const rng = new Rng(1);
    const classes = ['Clothes/Tops/Shirt', 'Clothes/Pants/Jeans', 'Goods/Shoes/Boot', 'Goods/Bags/Tote'];
    const lines = ['label,f0,f1,f2,f3,f4,f5,f6,f7'];
    for (let i = 0; i < 160; i++) {
      const c = i % classes.length;
      lines.push(
        [classes[c], ...Array.from({ length: 8 }, (_, j) => (j === c ? 3 : 0) + rng.normal())].join(','),
      );
    }
    const table = join(dir, 'table.csv');
    await writeFile(table, `${lines.join('\n')}\n`);
    const runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { data: table, epochs: 1, batchSize: 32 }), {
      progress: quietProgress(),
    });
    const indexPath = join(dir, 'table.index');
    const built = cli('index', runDir, '--data', table, '--out', indexPath);
    assert.equal(built.status, 0, built.stderr);
    const image = join(dir, 'q.png');
    await sharp(Buffer.alloc(28 * 28, 128), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(image);
    const r = cli('search', indexPath, '--image', image);
    assert.notEqual(r.status, 0);
    assert.equal(r.stdout, '');
    const message = r.stderr.trim();
    assert.equal(message.split('\n').length, 1, message);
    assert.match(
      message,
      /was trained on feature vectors \[8\], not images, so it cannot embed .*q\.png; query with a vector or an id instead/,
    );
    assert.doesNotMatch(message, /bug| {4}at /);
  });
});
