/**
 * The browser entry's parts, run in Node against Node's own components: the JS SHA-256 against
 * node:crypto, base64 against Buffer, pixels against sharp (the decoder Node uses), index bytes
 * against `EmbeddingIndex.load`, the model checksum against `openRunEncoder`, and the errors.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { decodeImage, resolveDecodeOptions } from '../../src/data/imageDecode.js';
import { useBackend } from '../../src/engine/backend.js';
import { Rng } from '../../src/random.js';
import { train } from '../../src/run/train.js';
import { EmbeddingIndex } from '../../src/search/embeddingIndex.js';
import { embedInputs } from '../../src/search/embedInputs.js';
import { calibrate } from '../../src/search/predictPath.js';
import { openRunEncoder } from '../../src/search/runModel.js';
import {
  calibrationFromJSON,
  calibrationToJSON,
  greyOf,
  loadWebIndex,
  type ModelFiles,
  modelChecksum,
  modelInputFromPixels,
  openWebEncoder,
  resizePixels,
  sha256,
  WebCatalogue,
} from '../../src/web/index.js';
import { base64ToBytes, bytesToBase64 } from '../../src/web/siteData.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

/** A smooth picture with noise, so resampling differences show. */
function picture(width: number, height: number, channels: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++)
        out[(y * width + x) * channels + c] = Math.max(
          0,
          Math.min(
            255,
            Math.round(128 + 90 * Math.sin(x / 7 + c) * Math.cos(y / 5) + (rng.next() - 0.5) * 60),
          ),
        );
  return out;
}

describe('web: SHA-256 and base64', () => {
  it('sha256 equals node:crypto on every padding boundary and on 1 MB', () => {
    for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 1 << 20]) {
      const data = randomBytes(n, n);
      assert.equal(
        Buffer.from(sha256(data)).toString('hex'),
        createHash('sha256').update(data).digest('hex'),
        `length ${n}`,
      );
    }
  });

  it('base64 round-trips and equals Buffer', () => {
    for (const n of [0, 1, 2, 3, 4, 100, 70_000]) {
      const data = randomBytes(n, n + 7);
      const text = bytesToBase64(data);
      assert.equal(text, Buffer.from(data).toString('base64'));
      assert.deepEqual(base64ToBytes(text), data);
    }
    assert.throws(() => base64ToBytes('ab$c', 'model.json'), {
      name: 'ContrastiveError',
      message: /model\.json: character 2 \("\$"\) is not base64/,
    });
  });
});

describe('web: pixels as sharp makes them', () => {
  it('grey of RGB equals sharp grayscale() on 20,000 random pixels (one level at most, at a rounding boundary)', async (t) => {
    const n = 20_000;
    const rgb = randomBytes(n * 3, 11);
    const ref = await sharp(Buffer.from(rgb), { raw: { width: n, height: 1, channels: 3 } })
      .grayscale()
      .raw()
      .toBuffer();
    let mismatches = 0;
    for (let i = 0; i < n; i++) {
      const d = Math.abs(greyOf(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) - ref[i]);
      assert.ok(d <= 1, `pixel ${i}: ${d} levels apart`);
      if (d) mismatches++;
    }
    t.diagnostic(`grey differs from sharp on ${mismatches} of ${n} random colours (by one level)`);
    assert.ok(mismatches <= n / 5000);
  });

  it('an image at the model size is bit-identical to decodeImage; shrinking is within 2 levels of sharp', async (t) => {
    const dir = await tempRuns();
    try {
      const report: string[] = [];
      for (const [width, height, channels] of [
        [28, 28, 1],
        [28, 28, 3],
        [56, 56, 1],
        [100, 100, 1],
        [200, 150, 3],
        [333, 500, 4],
        [1000, 800, 1],
      ] as const) {
        const pixels = picture(width, height, channels, width + channels);
        // opaque alpha: sharp resizes translucent images premultiplied, which the browser side does not copy
        if (channels === 4) for (let i = 3; i < pixels.length; i += 4) pixels[i] = 255;
        const file = join(dir, `p${width}x${height}x${channels}.png`);
        await sharp(Buffer.from(pixels), { raw: { width, height, channels } }).png().toFile(file);
        const node = await decodeImage(file, resolveDecodeOptions('test', { size: [28, 28], channels: 1 }));
        const web = modelInputFromPixels({ data: pixels, width, height, channels }, [28, 28, 1]);
        let max = 0;
        let sum = 0;
        for (let i = 0; i < node.length; i++) {
          const d = Math.abs(Math.round(web[i] * 255) - node[i]);
          max = Math.max(max, d);
          sum += d;
        }
        report.push(`${width}×${height}×${channels}: max ${max}, mean ${(sum / node.length).toFixed(2)}`);
        if (width === 28 && height === 28)
          assert.equal(max, 0, `${width}×${height}×${channels} must be identical`);
        else assert.ok(max <= 2, `${width}×${height}×${channels}: ${max} levels apart`);
      }
      t.diagnostic(`browser pixels vs sharp (levels of 255): ${report.join('; ')}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('resizePixels keeps the size when nothing changes, and bad pixels are a ContrastiveError naming the field', () => {
    const data = picture(5, 4, 1, 1);
    assert.equal(resizePixels(data, 5, 4, 1, 5, 4), data);
    assert.throws(() => modelInputFromPixels({ data, width: 5, height: 4, channels: 3 }, [28, 28, 1]), {
      name: 'ContrastiveError',
      message: /image data must hold 5×4×3 = 60 values, but holds 20/,
    });
    assert.throws(() => modelInputFromPixels({ data, width: 0, height: 4, channels: 1 }, [28, 28, 1]), {
      message: /width and height must be integers > 0/,
    });
  });
});

describe('web: index, model and catalogue against Node', () => {
  let dir: string;
  let runDir: string;
  let indexPath: string;
  let backbone: ModelFiles;
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 1, trainLimit: 128, testLimit: 60 }), {
      progress: quietProgress(),
    });
    const embedded = await embedInputs(runDir, {
      kind: 'fashion-mnist',
      split: 'train',
      dataDir: EMBEDDED_FASHION_MNIST_DIR,
      limit: 200,
    });
    const encoder = await openRunEncoder(runDir);
    const index = EmbeddingIndex.create({ tree: encoder.tree, dim: embedded.dim, model: embedded.model });
    encoder.dispose();
    index.add(embedded.items, embedded.embeddings);
    indexPath = join(dir, 'catalogue.index');
    await index.save(indexPath);
    index.dispose();
    backbone = {
      modelJson: await readFile(join(runDir, 'model', 'model.json')),
      weights: { 'weights.bin': await readFile(join(runDir, 'model', 'weights.bin')) },
    };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loadWebIndex reads the same items and vectors as EmbeddingIndex.load', async () => {
    const node = await EmbeddingIndex.load(indexPath);
    const web = await loadWebIndex(await readFile(indexPath), { name: 'catalogue.index' });
    assert.deepEqual(web.items(), node.items());
    assert.deepEqual(web.matrix(), node.matrix());
    assert.deepEqual(
      web.search({ id: '3' }, { k: 10, within: 'Clothes' }),
      node.search({ id: '3' }, { k: 10, within: 'Clothes' }),
    );
    node.dispose();
    web.dispose();
  });

  it('an index saved with an HNSW graph is searched exactly in the browser (as Node with --exact)', async () => {
    const node = await EmbeddingIndex.load(indexPath);
    await node.buildApproximate();
    const approximatePath = join(dir, 'approximate.index');
    await node.save(approximatePath);
    const web = await loadWebIndex(await readFile(approximatePath));
    assert.equal(web.approximate, false);
    const query = node.embedding('7');
    assert.deepEqual(
      web.search({ vector: query }, { k: 10 }),
      node.search({ vector: query }, { k: 10, approximate: false }),
    );
    node.dispose();
    web.dispose();
  });

  it('a corrupt, newer or foreign file is a ContrastiveError naming it', async () => {
    const bytes = new Uint8Array(await readFile(indexPath));
    const corrupt = bytes.slice();
    corrupt[corrupt.length - 1] ^= 1;
    await assert.rejects(loadWebIndex(corrupt, { name: 'shop.index' }), {
      name: 'ContrastiveError',
      message: /shop\.index is corrupt: its SHA-256 checksum does not match/,
    });
    const newer = bytes.slice();
    new DataView(newer.buffer).setUint32(8, 2, true);
    await assert.rejects(loadWebIndex(newer, { name: 'shop.index' }), { message: /version 2, newer than/ });
    await assert.rejects(loadWebIndex(new TextEncoder().encode('<html>'), { name: 'page.html' }), {
      message: /page\.html is not a tfjs-contrastive index file/,
    });
  });

  it("the model checksum is Node's, and another model's index is refused", async () => {
    const encoder = await openRunEncoder(runDir);
    assert.equal(await modelChecksum([backbone]), encoder.identity.checksum);
    encoder.dispose();
    const index = await loadWebIndex(await readFile(indexPath));
    const other = { ...index.model!, checksum: '0'.repeat(64), source: 'runs/other' };
    const foreign = EmbeddingIndex.create({ tree: index.tree, dim: index.dim, model: other });
    await assert.rejects(openWebEncoder({ backbone, index: foreign }), {
      name: 'ContrastiveError',
      message: /the index was built by the model from runs\/other .* embed queries with the index's model/,
    });
    await assert.rejects(openWebEncoder({ backbone: { ...backbone, weights: {} }, index }), {
      message: /weight file "weights\.bin" listed in model\.json is missing/,
    });
    await assert.rejects(
      openWebEncoder({
        backbone,
        index: { ...index, space: 'head', model: index.model, checkModel: () => {} },
      }),
      {
        message: /head must be given/,
      },
    );
    index.dispose();
  });

  it('WebCatalogue embeds pixels like Node, searches, and predicts with a calibration that survives JSON', async () => {
    const index = await EmbeddingIndex.load(indexPath);
    const labelled = index.items().slice(0, 100);
    const calibration = calibrate(index, {
      embeddings: labelled.map((it) => index.embedding(it.id)),
      labels: labelled.map((it) => it.label!),
      selfIds: labelled.map((it) => it.id),
    });
    const json = JSON.parse(JSON.stringify(calibrationToJSON(calibration)));
    assert.deepEqual(calibrationFromJSON(json), calibration);
    const catalogue = await WebCatalogue.open({
      index: await readFile(indexPath),
      backbone,
      calibration: json,
    });
    const pixels = picture(28, 28, 1, 3);
    const input = Float32Array.from(pixels, (v) => v / 255);
    const encoder = await openRunEncoder(runDir);
    const nodeVector = tf.tidy(() => encoder.embed(tf.tensor(input, [1, ...encoder.inputShape]))).dataSync();
    encoder.dispose();
    const answer = await catalogue.query({ data: pixels, width: 28, height: 28, channels: 1 }, { k: 5 });
    assert.deepEqual(Array.from(answer.embedding), Array.from(nodeVector));
    assert.deepEqual(answer.result, index.search({ vector: nodeVector }, { k: 5 }));
    assert.equal(answer.prediction.levels.length, 3);
    const nodes = catalogue.nodes();
    assert.equal(nodes[0].path.length, 1);
    assert.equal(
      nodes.filter((n) => n.level === 0).reduce((s, n) => s + n.count, 0),
      200,
    );
    assert.throws(() => catalogue.search(nodeVector, { within: 'Clothes/Topz' }), {
      message: /did you mean "Clothes\/Tops"/,
    });
    catalogue.dispose();
    index.dispose();
  });

  it("a 'head' index needs the head: its checksum and embeddings are Node's", async () => {
    const encoder = await openRunEncoder(runDir, 'head');
    const head: ModelFiles = {
      modelJson: await readFile(join(runDir, 'head', 'model.json')),
      weights: { 'weights.bin': await readFile(join(runDir, 'head', 'weights.bin')) },
    };
    assert.equal(await modelChecksum([backbone, head]), encoder.identity.checksum);
    const index = EmbeddingIndex.create({
      tree: encoder.tree,
      dim: tf.tidy(() => encoder.embed(tf.zeros([1, ...encoder.inputShape])).shape[1]),
      space: 'head',
      model: encoder.identity,
    });
    const web = await openWebEncoder({ backbone, head, index });
    const input = tf.tensor(
      Float32Array.from(picture(28, 28, 1, 9), (v) => v / 255),
      [1, ...encoder.inputShape],
    );
    const [fromWeb, fromNode] = tf.tidy(() => [web.embed(input).dataSync(), encoder.embed(input).dataSync()]);
    assert.deepEqual(fromWeb, fromNode);
    input.dispose();
    await assert.rejects(openWebEncoder({ backbone, index }), { message: /head must be given/ });
    web.dispose();
    encoder.dispose();
  });

  it("writeWebSite makes thumbnails from the items' image files when the index holds none", async () => {
    const { writeWebSite } = await import('../../src/web/site.js');
    const files: string[] = [];
    for (let i = 0; i < 3; i++) {
      const file = join(dir, `photo${i}.png`);
      await sharp(Buffer.from(picture(200, 150, 3, i)), { raw: { width: 200, height: 150, channels: 3 } })
        .png()
        .toFile(file);
      files.push(file);
    }
    const embedded = await embedInputs(runDir, { kind: 'images', files });
    const encoder = await openRunEncoder(runDir);
    const index = EmbeddingIndex.create({ tree: encoder.tree, dim: embedded.dim, model: embedded.model });
    encoder.dispose();
    index.add(embedded.items, embedded.embeddings);
    const photosPath = join(dir, 'photos.index');
    await index.save(photosPath);
    index.dispose();
    const summary = await writeWebSite(photosPath, { out: join(dir, 'photo-site') });
    assert.equal(summary.thumbnails, 3);
    assert.equal(summary.calibration, null, 'unlabelled items: raw confidences');
    const config = await readFile(join(dir, 'photo-site', 'site-config.js'), 'utf8');
    const thumbnailFiles = JSON.parse(
      config
        .slice(config.indexOf('=') + 1)
        .trim()
        .replace(/;$/, ''),
    ).thumbnailFiles;
    assert.deepEqual(Object.keys(thumbnailFiles).sort(), [...files].sort());
    const meta = await sharp(join(dir, 'photo-site', thumbnailFiles[files[0]])).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 72]);
  });

  it('writeWebSite refuses an index whose model is gone, and a file that is not an index', async () => {
    const { writeWebSite } = await import('../../src/web/site.js');
    const moved = join(dir, 'elsewhere.index');
    const index = await EmbeddingIndex.load(indexPath);
    const copy = EmbeddingIndex.create({
      tree: index.tree,
      dim: index.dim,
      model: { ...index.model!, source: join(dir, 'gone') },
    });
    copy.add(index.items(), index.matrix());
    await copy.save(moved);
    index.dispose();
    copy.dispose();
    await assert.rejects(writeWebSite(moved, { out: join(dir, 'site') }), {
      name: 'ContrastiveError',
      message: /gone/,
    });
    await writeFile(join(dir, 'junk.index'), 'junk');
    await assert.rejects(writeWebSite(join(dir, 'junk.index'), { out: join(dir, 'site') }), {
      message: /junk\.index is not a tfjs-contrastive index file/,
    });
  });
});
