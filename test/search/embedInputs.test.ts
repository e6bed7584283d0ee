/** embedInputs with a real (tiny) trained run: same vectors as eval, every kind of source, model identity. */
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { listTrainingImages, loadTrainingData } from '../../src/data/dataset.js';
import { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashionMnist.js';
import { writeNpy } from '../../src/data/npy.js';
import { IN_MEMORY_IMAGES } from '../../src/data/sourceRows.js';
import { resolveDataSource } from '../../src/data/sources.js';
import { ContrastiveError } from '../../src/errors.js';
import { embedDataSplit } from '../../src/eval/embed.js';
import { train } from '../../src/run/train.js';
import { loadTrainedRun } from '../../src/run/trainedRun.js';
import { EmbeddingIndex, embedInputs, openIndexEncoder, openRunEncoder } from '../../src/search/index.js';
import { expectClose } from '../helpers/backends.js';
import { writeFashionPngs } from '../helpers/images.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

describe('embedInputs', () => {
  let dir: string;
  let runDir: string;
  before(async () => {
    dir = await tempRuns();
    runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 1, trainLimit: 256, testLimit: 120 }), {
      progress: quietProgress(),
    });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("embeds the run's own test split exactly as eval does (<= 1e-5), with labels and row ids", async () => {
    const out = await embedInputs(runDir, {
      kind: 'fashion-mnist',
      split: 'test',
      dataDir: EMBEDDED_FASHION_MNIST_DIR,
      limit: 120,
    });
    const { model, data } = await loadTrainedRun(runDir);
    const reference = await embedDataSplit(model, data.test, data.inputShape);
    expectClose(out.embeddings, reference.dataSync(), { rtol: 1e-5, atol: 1e-5 }, 'embedding');
    reference.dispose();
    model.dispose();
    assert.equal(out.count, 120);
    assert.equal(out.dim, 64);
    assert.equal(out.items[3].id, '3');
    assert.deepEqual(out.items[0].label, data.tree.path(2, data.test.labels[2]));
    assert.match(out.model.checksum, /^[0-9a-f]{64}$/);
    assert.equal(out.space, 'backbone');
  });

  it('the head space differs from the backbone and has its own checksum', async () => {
    const source = {
      kind: 'fashion-mnist',
      split: 'test',
      dataDir: EMBEDDED_FASHION_MNIST_DIR,
      limit: 8,
    } as const;
    const backbone = await embedInputs(runDir, source);
    const head = await embedInputs(runDir, source, { space: 'head' });
    assert.equal(head.dim, 32);
    assert.notEqual(head.model.checksum, backbone.model.checksum);
    const again = await openRunEncoder(runDir);
    assert.equal(again.identity.checksum, backbone.model.checksum);
    again.dispose();
  });

  it('embeds an image folder (labelled), loose image files (unlabelled) and a .npy table, in batches', async () => {
    const test = await loadFashionMnist({ split: 'test', dataDir: EMBEDDED_FASHION_MNIST_DIR, limit: 6 });
    const folder = join(dir, 'images');
    const files: string[] = [];
    for (let i = 0; i < 6; i++) {
      const path = test.tree.path(2, test.classIds[i]);
      const sub = join(folder, ...path.map((p) => p.replace('/', '-')));
      await mkdir(sub, { recursive: true });
      const raw = Buffer.from(
        Array.from(test.images.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255)),
      );
      const file = join(sub, `${i}.png`);
      await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(file);
      files.push(file);
    }
    const progress: number[] = [];
    const fromFolder = await embedInputs(runDir, await resolveDataSource(folder), {
      batchSize: 4,
      onProgress: (done) => progress.push(done),
      thumbnails: true,
    });
    assert.deepEqual(progress, [4, 6]);
    assert.equal(fromFolder.count, 6);
    assert.ok(
      fromFolder.items.every(
        (it) => Array.isArray(it.label) && it.thumbnail?.startsWith('data:image/png;base64,'),
      ),
    );
    const loose = await embedInputs(runDir, { kind: 'images', files });
    assert.ok(loose.items.every((it) => it.label === undefined && it.source !== undefined));
    // the same images give the same vectors, whatever the source kind (folder order is sorted)
    const bySource = new Map(
      loose.items.map((it, i) => [it.source, loose.embeddings.subarray(i * 64, (i + 1) * 64)]),
    );
    fromFolder.items.forEach((it, i) => {
      expectClose(fromFolder.embeddings.subarray(i * 64, (i + 1) * 64), bySource.get(it.source)!, {
        rtol: 1e-5,
        atol: 1e-6,
      });
    });
    const npy = join(dir, 'pixels.npy');
    await writeNpy(npy, { shape: [6, 784], data: test.images });
    await writeFile(
      `${npy}.labels.txt`,
      `${Array.from(test.classIds, (c) => test.tree.path(2, c).join('/')).join('\n')}\n`,
    );
    const table = await embedInputs(runDir, await resolveDataSource(npy));
    assert.equal(table.count, 6);
    const index = EmbeddingIndex.create({ tree: test.tree, dim: 64, model: table.model });
    index.add(table.items, table.embeddings);
    assert.equal(index.size, 6);
  });

  it('a manifest streamed from the image cache embeds exactly as its pixels in memory, with the items and labels training reads', async () => {
    const root = join(dir, 'manifest');
    const count = IN_MEMORY_IMAGES + 20; // more than a query's worth: read through the image cache
    const { files, labels } = await writeFashionPngs(root, 'img', count);
    const lines = [
      'image,label',
      ...files.map((f, i) => `${f},${labels[i].map((p) => p.replace('/', '-')).join('/')}`),
    ];
    const manifest = join(root, 'items.csv');
    await writeFile(manifest, `${lines.join('\n')}\n`);
    const cacheDir = join(root, 'cache');
    const streamed = await embedInputs(runDir, await resolveDataSource(manifest), { batchSize: 7, cacheDir });
    // what training reads from the same manifest: the same files, labels and pixels
    const listing = await listTrainingImages({ data: manifest, testData: manifest });
    assert.deepEqual(
      streamed.items.map((it) => it.source),
      listing.test.files,
    );
    streamed.items.forEach((it, i) => {
      assert.deepEqual(it.label, listing.tree.path(2, listing.test.labels[i * 3 + 2]));
      assert.equal(it.id, `img/${i}.png`);
    });
    const memory = await loadTrainingData({ data: manifest, testData: manifest });
    const encoder = await openRunEncoder(runDir);
    const inputs = tf.tensor(memory.test.inputs, [count, ...encoder.inputShape]);
    const inMemory = encoder.embed(inputs);
    expectClose(streamed.embeddings, inMemory.dataSync(), { rtol: 1e-6, atol: 1e-6 }, 'embedding');
    tf.dispose([inputs, inMemory]);
    encoder.dispose();
    assert.ok(
      (await readdir(cacheDir)).some((f) => f.endsWith('.u8')),
      'the images went through the cache',
    );
  });

  it('an index built by another model is refused when its queries would be embedded', async () => {
    const probe = await openRunEncoder(runDir);
    const tree = probe.tree;
    probe.dispose();
    const foreign = EmbeddingIndex.create({
      tree,
      dim: 64,
      model: { checksum: '0'.repeat(64), source: runDir },
    });
    await assert.rejects(
      openIndexEncoder(foreign),
      /openIndexEncoder: the index was built by the model from .* \(checksum 000000000000\), but the query model from .* has checksum [0-9a-f]{12}; embed queries with the index's model or rebuild the index/,
    );
    const unknown = EmbeddingIndex.create({ tree, dim: 64 });
    await assert.rejects(openIndexEncoder(unknown), /this index records no model/);
    const own = await embedInputs(runDir, {
      kind: 'fashion-mnist',
      split: 'test',
      dataDir: EMBEDDED_FASHION_MNIST_DIR,
      limit: 2,
    });
    const mine = EmbeddingIndex.create({ tree, dim: 64, model: own.model });
    const encoder = await openIndexEncoder(mine);
    assert.equal(encoder.identity.checksum, own.model.checksum);
    encoder.dispose();
  });

  it('an image that cannot be decoded, or a table of the wrong width, is an error naming it', async () => {
    const bad = join(dir, 'broken.png');
    await writeFile(bad, 'not a png');
    await assert.rejects(embedInputs(runDir, { kind: 'images', files: [bad] }), (e: unknown) => {
      return e instanceof ContrastiveError && e.message.includes(bad) && /cannot decode/.test(e.message);
    });
    const csv = join(dir, 'narrow.csv');
    await writeFile(csv, 'label,a,b\nClothes/Tops/Shirt,1,2\n');
    await assert.rejects(
      embedInputs(runDir, { kind: 'table', path: csv }),
      /takes inputs of shape \[28,28,1\] \(784 values\), but .*narrow\.csv \(2 features per row\) has 2/,
    );
    await assert.rejects(resolveDataSource(join(dir, 'nothing-here')), /no such file or folder/);
  });
});
