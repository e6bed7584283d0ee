/**
 * The one parser of `--data` (`resolveDataSource`) and the use side's streaming reader
 * (`openSourceRows`): a manifest, a folder, a table and Fashion-MNIST mean the same thing to
 * training and to every use command; a table and a manifest are told apart as docs/data.md
 * says; an ambiguous file is a one-line error saying how to choose.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dataKind, listTrainingImages, loadTrainingData } from '../../src/data/dataset.js';
import { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashionMnist.js';
import { writeNpy } from '../../src/data/npy.js';
import { IN_MEMORY_IMAGES, openSourceRows } from '../../src/data/sourceRows.js';
import { type DataSource, dataSourceOptions, resolveDataSource } from '../../src/data/sources.js';
import { ContrastiveError } from '../../src/errors.js';
import { writeFashionPngs } from '../helpers/images.js';

/** A one-line ContrastiveError whose message matches `pattern`. */
const oneLine = (pattern: RegExp) => (e: unknown) =>
  e instanceof ContrastiveError && !e.message.includes('\n') && pattern.test(e.message);

/** More images than `IN_MEMORY_IMAGES`, so the use side reads them through the image cache. */
const COUNT = IN_MEMORY_IMAGES + 20;

describe('data sources: one parser of --data for training and the use side', () => {
  let dir: string;
  /** Relative image path and label path of each manifest row. */
  const rows: [string, string][] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sources-'));
    const { files, labels } = await writeFashionPngs(dir, 'photos', COUNT);
    files.forEach((file, i) => {
      // group/family/class ("/" inside a name made "-"), a few cut short to the family (training
      // pads them by repeating the leaf)
      const path = labels[i].map((p) => p.replace('/', '-'));
      rows.push([file, (i % 9 === 4 ? path.slice(0, 2) : path).join('/')]);
    });
    await writeFile(join(dir, 'items.csv'), `image,label\n${rows.map(([f, l]) => `${f},${l}`).join('\n')}\n`);
    await writeFile(
      join(dir, 'items.jsonl'),
      `${rows.map(([f, l]) => JSON.stringify({ image: f, label: l })).join('\n')}\n`,
    );
    await writeFile(join(dir, 'table.csv'), 'label,f0,f1\nA/x,1,2\nB/y,3,4\n');
    await writeFile(join(dir, 'table.jsonl'), '{"label":"A/x","features":[1,2]}\n');
    await writeFile(join(dir, 'both.csv'), 'label,image,f1\nA/x,0.5,0.25\n');
    await writeFile(join(dir, 'with-id.csv'), 'id,image,label,width\n7,photos/0.png,A/x,28\n');
    await writeFile(join(dir, 'both.jsonl'), '{"image":"photos/0.png","label":"A/x","features":[1,2]}\n');
    await writeFile(join(dir, 'renamed.csv'), 'file,label\nphotos/0.png,A/x\n');
    await writeNpy(join(dir, 'pixels.npy'), { shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves every kind of --data the same way for every command', async () => {
    const at = (p: string) => join(dir, p);
    assert.deepEqual(await resolveDataSource('fashion-mnist:train'), {
      kind: 'fashion-mnist',
      split: 'train',
    });
    assert.deepEqual(await resolveDataSource('fashion-mnist', { split: 'train', dataDir: 'd' }), {
      kind: 'fashion-mnist',
      split: 'train',
      dataDir: 'd',
    });
    assert.equal((await resolveDataSource(dir)).kind, 'image-folder');
    const flat = await resolveDataSource(at('photos'));
    assert.equal(flat.kind, 'images');
    assert.equal((flat as Extract<DataSource, { kind: 'images' }>).files.length, COUNT);
    assert.deepEqual(await resolveDataSource(at('photos/0.png')), {
      kind: 'images',
      files: [at('photos/0.png')],
    });
    assert.deepEqual(await resolveDataSource(at('pixels.npy')), {
      kind: 'table',
      path: at('pixels.npy'),
      labelsPath: `${at('pixels.npy')}.labels.txt`,
    });
    await assert.rejects(resolveDataSource(at('nothing-here')), oneLine(/no such file or folder/));
  });

  it('a CSV/JSONL is a manifest with an image column and no numeric one, a table without an image column', async () => {
    const kind = async (p: string, options = {}) => (await resolveDataSource(join(dir, p), options)).kind;
    assert.equal(await kind('items.csv'), 'image-manifest');
    assert.equal(await kind('items.jsonl'), 'image-manifest');
    assert.equal(await kind('table.csv'), 'table');
    assert.equal(await kind('table.jsonl'), 'table');
    // numeric columns beside an image path: still a manifest (a table has no text column)
    assert.equal(await kind('with-id.csv'), 'image-manifest');
    // naming it decides
    assert.equal(await kind('both.csv', { dataKind: 'table' }), 'table');
    assert.equal(await kind('both.csv', { dataKind: 'manifest' }), 'image-manifest');
    assert.equal(await kind('renamed.csv', { imageColumn: 'file' }), 'image-manifest');
    // training resolves the very same way
    assert.equal(await dataKind({ data: join(dir, 'items.csv') }), 'image-manifest');
    assert.equal(await dataKind({ data: join(dir, 'table.csv') }), 'table');
    assert.equal(await dataKind({ data: join(dir, 'both.csv'), dataKind: 'table' }), 'table');
  });

  it('an ambiguous CSV/JSONL is a one-line error saying which option chooses, for training and use alike', async () => {
    const ambiguous = oneLine(
      /ambiguous: .*"image" column \(an image manifest\) and every column besides the label is numeric \(a feature table\); pass --data-kind manifest or --data-kind table\.$/,
    );
    await assert.rejects(
      resolveDataSource(join(dir, 'both.csv'), { command: 'contrastive index' }),
      ambiguous,
    );
    await assert.rejects(loadTrainingData({ data: join(dir, 'both.csv') }), ambiguous);
    await assert.rejects(
      resolveDataSource(join(dir, 'both.jsonl')),
      oneLine(/ambiguous: .*"image" key \(an image manifest\) and a "features" vector .*--data-kind/),
    );
    await assert.rejects(
      resolveDataSource(join(dir, 'renamed.csv')),
      oneLine(/no "image" column but "file" holds image paths; pass --image-column file/),
    );
    await assert.rejects(
      resolveDataSource(join(dir, 'table.csv'), { dataKind: 'table', imageColumn: 'image' }),
      oneLine(/--image-column makes it an image manifest but --data-kind says table/),
    );
    await assert.rejects(
      dataKind({ data: join(dir, 'photos') }),
      oneLine(
        /train: --data .*photos is a folder of images without class sub-folders; training needs labels/,
      ),
    );
    await assert.rejects(
      dataSourceOptions('contrastive index', {}),
      oneLine(/contrastive index: --data is required \(what to read: fashion-mnist/),
    );
  });

  it('the same manifest gives training and the use side the same items, labels and pixels', async () => {
    const manifest = join(dir, 'items.csv');
    const listing = await listTrainingImages({ data: manifest, testFraction: 0.25, seed: 3 });
    const depth = listing.tree.depth;
    const trained = new Map<string, string[]>();
    for (const split of [listing.train, listing.test])
      split.files.forEach((file, i) => {
        trained.set(file, listing.tree.path(depth - 1, split.labels[i * depth + depth - 1]));
      });
    assert.equal(trained.size, COUNT);
    const { source } = await dataSourceOptions('contrastive index', { data: manifest });
    const reader = await openSourceRows(source, { image: [28, 28, 1], cacheDir: join(dir, 'cache') });
    try {
      assert.equal(reader.count, COUNT);
      assert.deepEqual(
        reader.items.map((it) => it.id),
        rows.map(([f]) => f),
      );
      for (const item of reader.items) assert.deepEqual(item.label, trained.get(item.source), item.id);
      // the pixels: row for row those loadTrainingData decodes (a separate test split keeps the order)
      const memory = await loadTrainingData({ data: manifest, testData: manifest });
      const streamed = new Float32Array(COUNT * 784);
      for await (const batch of reader.batches(64)) streamed.set(batch.inputs, batch.start * 784);
      assert.deepEqual(streamed, memory.test.inputs);
      assert.ok(
        (await readdir(join(dir, 'cache'))).some((f) => f.endsWith('.u8')),
        'read through the cache',
      );
    } finally {
      await reader.close();
    }
    // the JSONL form of the manifest reads the same; five images are decoded in memory, to the same floats
    const memory = await loadTrainingData({ data: manifest, testData: manifest });
    const jsonl = await openSourceRows(await resolveDataSource(join(dir, 'items.jsonl')), {
      image: [28, 28, 1],
      cacheDir: join(dir, 'cache'),
      limit: 5,
    });
    assert.deepEqual(
      jsonl.items.map((it) => [it.id, it.label]),
      rows.slice(0, 5).map(([f]) => [f, trained.get(join(dir, f))]),
    );
    for await (const batch of jsonl.batches(64))
      assert.deepEqual(batch.inputs, memory.test.inputs.subarray(0, 5 * 784));
    await jsonl.close();
  });

  it('streams Fashion-MNIST from its IDX file in batches, equal to loadFashionMnist', async () => {
    const source = await resolveDataSource('fashion-mnist:test', { dataDir: EMBEDDED_FASHION_MNIST_DIR });
    const reader = await openSourceRows(source, { image: null, cacheDir: join(dir, 'cache'), limit: 300 });
    const whole = await loadFashionMnist({ split: 'test', dataDir: EMBEDDED_FASHION_MNIST_DIR, limit: 300 });
    const streamed = new Float32Array(300 * 784);
    const sizes: number[] = [];
    for await (const batch of reader.batches(128)) {
      streamed.set(batch.inputs, batch.start * 784);
      sizes.push(batch.rows);
    }
    assert.deepEqual(sizes, [128, 128, 44]);
    assert.deepEqual(streamed, whole.images);
    assert.deepEqual(reader.items[7].label, whole.tree.path(2, whole.classIds[7]));
    assert.equal(reader.items[7].source, 'fashion-mnist:test#7');
  });
});
