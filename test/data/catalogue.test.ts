import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import sharp from 'sharp';
import { loadTrainingData } from '../../src/data/dataset.js';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { type FashionCatalogue, renderFashionCatalogue } from '../../src/data/tools/renderCatalogue.js';

let root: string;
let catalogue: FashionCatalogue;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'contrastive-catalogue-'));
  catalogue = await renderFashionCatalogue({
    outDir: root,
    trainItems: 40,
    testItems: 12,
    size: 32,
    seed: 5,
    dataDir: EMBEDDED_FASHION_MNIST_DIR,
  });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

it('renders colour photos in a folder tree and a manifest that load as the same dataset', async () => {
  assert.deepEqual(catalogue.counts, { train: 40, test: 12 });
  const common = { imageSize: 32, channels: 3 } as const;
  const folder = await loadTrainingData({
    ...common,
    data: catalogue.folders.train,
    testData: catalogue.folders.test,
  });
  const manifest = await loadTrainingData({
    ...common,
    data: catalogue.manifests.train,
    testData: catalogue.manifests.test,
  });
  assert.deepEqual(manifest.tree.toJSON(), folder.tree.toJSON());
  assert.deepEqual(manifest.train, folder.train);
  assert.deepEqual(manifest.test, folder.test);
  assert.equal(folder.tree.depth, 3);
  assert.ok(folder.tree.classes(0).every((g) => g === 'Clothes' || g === 'Goods'));
  const csv = await readFile(catalogue.manifests.train, 'utf8');
  assert.match(csv.split('\n')[0], /^image,label,group,family,class$/);
  assert.match(csv, /Clothes\/Tops\/T-shirt-top/);
});

it('the photos are colour, with varied backgrounds, and deterministic for a seed', async () => {
  const csv = (await readFile(catalogue.manifests.train, 'utf8')).trim().split('\n').slice(1);
  const files = csv.slice(0, 6).map((line) => join(root, line.split(',')[0]));
  const corners: number[][] = [];
  for (const file of files) {
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 3);
    assert.equal(info.width, 32);
    let chroma = 0;
    for (let p = 0; p < data.length; p += 3)
      chroma = Math.max(
        chroma,
        Math.max(data[p], data[p + 1], data[p + 2]) - Math.min(data[p], data[p + 1], data[p + 2]),
      );
    assert.ok(chroma > 30, `${file} has colour`);
    corners.push([data[0], data[1], data[2]]);
  }
  assert.ok(new Set(corners.map((c) => c.join(','))).size > 3, 'backgrounds differ');
  const again = await mkdtemp(join(tmpdir(), 'contrastive-catalogue-again-'));
  try {
    await renderFashionCatalogue({
      outDir: again,
      trainItems: 3,
      testItems: 1,
      size: 32,
      seed: 5,
      dataDir: EMBEDDED_FASHION_MNIST_DIR,
    });
    const first = (await readFile(join(again, 'train.csv'), 'utf8')).trim().split('\n')[1].split(',')[0];
    assert.deepEqual(await readFile(join(again, first)), await readFile(join(root, first)));
  } finally {
    await rm(again, { recursive: true, force: true });
  }
});
