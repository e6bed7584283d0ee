import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import sharp from 'sharp';
import { listTrainingImages, loadTrainingData } from '../../src/data/dataset.js';
import { readFeatureTable } from '../../src/data/featureTable.js';
import { ImageCache } from '../../src/data/imageCache.js';
import { readImageFolder } from '../../src/data/imageFolder.js';
import { isImageManifest, readImageManifest, readManifest } from '../../src/data/manifest.js';
import { ContrastiveError } from '../../src/errors.js';

const gzipped = promisify(gzip);

/** A real colour image: a pixel pattern seeded by `seed`, so every file differs. */
async function colourImage(path: string, seed: number, width = 10, height = 8): Promise<void> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let k = 0; k < pixels.length; k++) pixels[k] = (seed * 37 + k * 11 + (k % 3) * 80) % 256;
  const format = path.endsWith('.jpg') ? 'jpeg' : 'png';
  await sharp(pixels, { raw: { width, height, channels: 3 } })
    .toFormat(format)
    .toFile(path);
}

const fails = async (promise: Promise<unknown>, pattern: RegExp) =>
  assert.rejects(promise, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));

describe('image manifests', () => {
  let root: string;
  let files: string[];
  const classes = ['Clothes/Bottoms/Trouser', 'Clothes/Tops/Shirt', 'Goods/Bags/Bag'];
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'contrastive-manifest-'));
    files = [];
    let seed = 0;
    for (const dir of classes) {
      await mkdir(join(root, 'photos', dir), { recursive: true });
      for (let i = 0; i < 5; i++) {
        const file = join(root, 'photos', dir, `${i}.${i === 3 ? 'jpg' : 'png'}`);
        await colourImage(file, seed++, 10 + i, 8 + (seed % 3));
        files.push(file);
      }
    }
    // the folder reader visits files in sorted order: the manifests list them the same way
    files.sort();
    const rows = files.map((f) => ({
      image: relative(root, f),
      label: relative(join(root, 'photos'), f).split('/').slice(0, -1),
    }));
    await writeFile(
      join(root, 'items.csv'),
      `id,image,category\n${rows.map((r, i) => `${i},${r.image},${r.label.join('/')}`).join('\n')}\n`,
    );
    await writeFile(
      join(root, 'items.jsonl'),
      rows
        .map((r) =>
          JSON.stringify({ image: r.image, group: r.label[0], family: r.label[1], cls: r.label[2] }),
        )
        .join('\n'),
    );
    await writeFile(
      join(root, 'items.jsonl.gz'),
      await gzipped(rows.map((r) => JSON.stringify({ image: r.image, label: r.label })).join('\n')),
    );
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('a manifest and a folder of the same images give the same dataset (same tensors, same tree)', async () => {
    const common = { imageSize: 6, channels: 3, seed: 3, testFraction: 0.4 };
    const folder = await loadTrainingData({ ...common, data: join(root, 'photos') });
    const csv = await loadTrainingData({ ...common, data: join(root, 'items.csv'), labelColumn: 'category' });
    const jsonl = await loadTrainingData({
      ...common,
      data: join(root, 'items.jsonl'),
      levelColumns: ['group', 'family', 'cls'],
    });
    const gz = await loadTrainingData({ ...common, data: join(root, 'items.jsonl.gz') });
    assert.deepEqual(folder.inputShape, [6, 6, 3]);
    assert.equal(folder.train.size + folder.test.size, 15);
    for (const other of [csv, jsonl, gz]) {
      assert.deepEqual(other.tree.toJSON(), folder.tree.toJSON());
      assert.deepEqual(other.train, folder.train);
      assert.deepEqual(other.test, folder.test);
      assert.deepEqual(other.inputShape, folder.inputShape);
      assert.deepEqual(other.warnings, []);
    }
    assert.match(csv.source, /image manifest/);
  });

  it('lists the same dataset without decoding it; the image cache then gives the same tensors', async () => {
    for (const data of [join(root, 'photos'), join(root, 'items.csv')]) {
      for (const extra of [{}, { holdoutClasses: ['Shirt'], validationFraction: 0.3 }]) {
        const options = {
          data,
          labelColumn: 'category',
          imageSize: 6,
          channels: 3,
          seed: 4,
          testFraction: 0.3,
          ...extra,
        };
        const loaded = await loadTrainingData(options);
        const listed = await listTrainingImages(options);
        assert.deepEqual(listed.tree.toJSON(), loaded.tree.toJSON());
        assert.equal(listed.source, loaded.source);
        assert.deepEqual(listed.heldOut, loaded.heldOut);
        for (const part of ['train', 'test'] as const) {
          assert.deepEqual(listed[part].labels, loaded[part].labels, `${part} labels`);
          const cache = await ImageCache.open(listed[part].files, {
            cacheDir: join(root, 'cache'),
            size: [6, 6],
            channels: 3,
          });
          const inputs = new Float32Array(listed[part].size * cache.imageSize);
          await cache.readRows(
            Array.from({ length: listed[part].size }, (_, i) => i),
            inputs,
          );
          assert.deepEqual(inputs, loaded[part].inputs, `${part} pixels`);
          await cache.close();
        }
      }
    }
  });

  it('decodes colour at any size, and grey when asked', async () => {
    const colour = await readImageManifest(join(root, 'items.csv'), {
      labelColumn: 'category',
      size: [5, 7],
      channels: 3,
    });
    assert.deepEqual(colour.shape, [15, 5, 7, 3]);
    assert.equal(colour.images.length, 15 * 5 * 7 * 3);
    const grey = await readImageFolder(join(root, 'photos'), { size: [5, 7], channels: 1 });
    assert.deepEqual(grey.shape, [15, 5, 7, 1]);
    // colour really is colour: the channels of a pixel differ
    assert.notEqual(colour.images[0], colour.images[1]);
    const red = join(root, 'red.png');
    await sharp(Buffer.from(Array.from({ length: 4 * 4 * 3 }, (_, k) => (k % 3 === 0 ? 255 : 0))), {
      raw: { width: 4, height: 4, channels: 3 },
    })
      .png()
      .toFile(red);
    await writeFile(join(root, 'red.csv'), 'image,label\nred.png,Colour/Red\n');
    const one = await readImageManifest(join(root, 'red.csv'), { size: [2, 2], channels: 3 });
    assert.deepEqual(Array.from(one.images.subarray(0, 3)), [1, 0, 0]);
    await fails(
      readImageManifest(join(root, 'red.csv'), { size: [2, 2], channels: 3, minSourceSize: 8 }),
      /red\.csv line 2: cannot read image .*red\.png: the image is 4×4, smaller than the minimum 8 pixels per side/,
    );
  });

  it('resolves relative paths against the manifest folder, and says which line names a missing image', async () => {
    const m = await readManifest(join(root, 'items.csv'), { labelColumn: 'category' });
    assert.deepEqual(m.files, files);
    assert.equal(m.lines[0], 2);
    await writeFile(
      join(root, 'missing.csv'),
      `image,label\n${relative(root, files[0])},A/B\nphotos/nope.png,A/C\n`,
    );
    await fails(
      readImageManifest(join(root, 'missing.csv')),
      /^readImageManifest: missing\.csv line 3: cannot read image .*photos\/nope\.png: no such file\.$/,
    );
  });

  it('a label or image column that does not exist lists the columns found', async () => {
    await fails(
      readManifest(join(root, 'items.csv'), { labelColumn: 'class' }),
      /items\.csv line 1: expected a label-path column "class" in the header, but the columns are "id", "image", "category"; pass labelColumn/,
    );
    await fails(
      readManifest(join(root, 'items.csv'), { imageColumn: 'photo', labelColumn: 'category' }),
      /expected an image column "photo" in the header, but the columns are "id", "image", "category"/,
    );
    await fails(
      readManifest(join(root, 'items.jsonl'), { levelColumns: ['group', 'kind'] }),
      /items\.jsonl line 1: expected a key "kind", but the keys are "image", "group", "family", "cls"; pass levelColumns/,
    );
    await fails(
      loadTrainingData({ data: join(root, 'items.csv'), imageColumn: 'photo', labelColumn: 'category' }),
      /columns are "id", "image", "category"/,
    );
    assert.equal(await isImageManifest(join(root, 'items.csv')), true);
    assert.equal(await isImageManifest(join(root, 'items.jsonl')), true);
    assert.equal(await isImageManifest(join(root, 'photos')), false);
  });

  it('label paths of uneven depth are padded with one warning and a count, or kept as partial labels', async () => {
    const rows = files.map((f, i) => {
      const path = relative(join(root, 'photos'), f).split('/').slice(0, -1);
      return `${relative(root, f)},${(i % 5 === 0 ? path.slice(0, 2) : path).join('/')}`;
    });
    await writeFile(join(root, 'uneven.csv'), `image,label\n${rows.join('\n')}\n`);
    const data = await loadTrainingData({ data: join(root, 'uneven.csv'), imageSize: 4, testFraction: 0.3 });
    assert.equal(data.warnings.length, 1);
    assert.match(
      data.warnings[0],
      /3 of 15 label paths are shorter than the deepest \(3 levels\).*padded by repeating/,
    );
    assert.equal(data.tree.depth, 3);
    const partial = await loadTrainingData({
      data: join(root, 'uneven.csv'),
      imageSize: 4,
      testFraction: 0.3,
      shortLabels: 'unknown',
    });
    assert.match(partial.warnings[0], /kept as partial labels/);
    const all = [...partial.train.labels, ...partial.test.labels];
    assert.equal(all.filter((v) => v === -1).length, 3);
    assert.deepEqual(partial.tree.levelSizes, [2, 3, 3]);
  });
});

describe('tables cut off, gzip', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'contrastive-tables-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('a last line cut off mid-row is an error naming file and line', async () => {
    await writeFile(
      join(root, 'cut.csv'),
      'a,b,label\n1,2,Goods/Shoes/Sneaker\n3,4,Goods/Shoes/Sneaker\n5,6',
    );
    await fails(
      readFeatureTable(join(root, 'cut.csv')),
      /^readCsv: cut\.csv line 4: the file ends in the middle of this line \(no newline, 2 of 3 fields\): it looks cut off/,
    );
    await writeFile(join(root, 'cut.jsonl'), '{"features":[1],"label":"A/B"}\n{"features":[2],"lab');
    await fails(readFeatureTable(join(root, 'cut.jsonl')), /cut\.jsonl line 2: .*it looks cut off/);
  });

  it('a complete last line without a newline is read; a label seen only there is a warning', async () => {
    const body = 'a,b,label\n1,2,Goods/Shoes/Sneaker\n3,4,Goods/Shoes/Sneaker\n5,6,Goods/Shoes/Sneak';
    await writeFile(join(root, 'sneak.csv'), body);
    const table = await readFeatureTable(join(root, 'sneak.csv'));
    assert.equal(table.numRows, 3);
    assert.deepEqual(table.warnings, [
      'sneak.csv line 4: the file does not end with a newline and this last line\'s label "Goods/Shoes/Sneak" appears on no other line; if the file was cut off, that label is truncated.',
    ]);
    await writeFile(join(root, 'fine.csv'), 'a,b,label\n1,2,X/Y\n3,4,X/Y');
    assert.equal((await readFeatureTable(join(root, 'fine.csv'))).warnings, undefined);
    const data = await loadTrainingData({ data: join(root, 'sneak.csv'), testFraction: 0.3 });
    assert.equal(data.warnings.length, 1);
  });

  it('reads .csv.gz and .jsonl.gz through gzip, and says when a .gz is not gzip', async () => {
    const csv = 'a,b,label\n1,2,X/Y\n3,4.5,X/Z\n';
    await writeFile(join(root, 't.csv.gz'), await gzipped(csv));
    await writeFile(join(root, 't.csv'), csv);
    assert.deepEqual(
      await readFeatureTable(join(root, 't.csv.gz')),
      await readFeatureTable(join(root, 't.csv')),
    );
    await writeFile(join(root, 't.jsonl.gz'), await gzipped('{"features":[1,2],"label":"X/Y"}\n'));
    assert.deepEqual((await readFeatureTable(join(root, 't.jsonl.gz'))).paths, [['X', 'Y']]);
    await writeFile(join(root, 'plain.csv.gz'), csv);
    await fails(
      readFeatureTable(join(root, 'plain.csv.gz')),
      /cannot read .*plain\.csv\.gz: not a valid gzip file/,
    );
  });
});
