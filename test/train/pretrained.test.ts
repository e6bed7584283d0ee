/**
 * Frozen pretrained backbones of every form (tfjs layers, tfjs graph, ONNX): a head trains on
 * their cached features, the run records the model by path and SHA-256, and `embedInputs` / the
 * query path embed new images exactly as training did. Alpha is composited on the background.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { embedQueryImage } from '../../src/catalogue/queryImage.js';
import { listTrainingImages } from '../../src/data/dataset.js';
import { decodeImage, resolveDecodeOptions } from '../../src/data/imageDecode.js';
import { useBackend } from '../../src/engine/backend.js';
import { openFeatureExtractor } from '../../src/models/featureExtractor.js';
import { train } from '../../src/run/train.js';
import { loadTrainedRun } from '../../src/run/trainedRun.js';
import { embedInputs } from '../../src/search/embedInputs.js';
import { openRunEncoder } from '../../src/search/runModel.js';
import { resolveTrainConfig, type TrainConfig } from '../../src/train/config.js';
import {
  fixedImage,
  TINY_ONNX,
  TINY_ONNX_EXPECTED,
  writeGraphModel,
  writeLayersModel,
  writeTransparentCatalogue,
} from '../helpers/pretrained.js';
import { quietProgress, tempRuns } from '../helpers/train.js';

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++)
    worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1e-3, Math.abs(b[i])));
  return worst;
}

describe('frozen pretrained backbones (layers, graph, ONNX)', () => {
  let dir: string;
  let catalogue: string;
  const backbones: Record<string, string> = {};
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    catalogue = await writeTransparentCatalogue(join(dir, 'catalogue'));
    backbones.layers = await writeLayersModel(join(dir, 'layers'));
    backbones.graph = await writeGraphModel(join(dir, 'graph'));
    backbones.onnx = TINY_ONNX;
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const config = (out: string, backbone: string, extra: Partial<TrainConfig> = {}) =>
    resolveTrainConfig({
      out,
      data: catalogue,
      backbone,
      freeze: true,
      method: 'supcon',
      backend: 'wasm',
      epochs: 2,
      batchSize: 16,
      embeddingDim: 16,
      projectionDim: 8,
      headDims: ['32'],
      testFraction: 0.25,
      learningRate: 0.01,
      warmupEpochs: 0,
      logEvery: 2,
      seed: 3,
      ...extra,
    });

  it('ONNX features equal PyTorch on the same image (ImageNet scaling, NCHW)', async () => {
    const extractor = await openFeatureExtractor({ path: TINY_ONNX, output: 'pooled' });
    try {
      assert.equal(extractor.kind, 'onnx');
      assert.deepEqual(extractor.preprocessing.size, [16, 16]);
      assert.equal(extractor.preprocessing.layout, 'nchw');
      const image = tf.tensor4d(fixedImage(), [1, 16, 16, 3]);
      const features = await extractor.extract(image);
      image.dispose();
      const expected = JSON.parse(await readFile(TINY_ONNX_EXPECTED, 'utf8')) as { pooled: number[] };
      assert.ok(maxRelDiff(features.dataSync(), expected.pooled) < 1e-4);
      features.dispose();
    } finally {
      extractor.dispose();
    }
  });

  for (const kind of ['layers', 'graph', 'onnx'] as const) {
    it(`${kind}: trains a head on cached features, records the backbone, embeds new images as training did`, async () => {
      const out = join(dir, `run-${kind}`);
      const result = await train(await config(out, backbones[kind]), { progress: quietProgress() });
      assert.ok(Number.isFinite(result.finalLoss));
      const record = JSON.parse(await readFile(join(out, 'backbone.json'), 'utf8'));
      assert.equal(record.kind, kind);
      assert.match(record.sha256, /^[0-9a-f]{64}$/);
      assert.deepEqual(record.preprocessing.background, [255, 255, 255]);
      const cached = (await readdir(join(out, 'cache'))).filter((f) => f.startsWith('features-'));
      assert.equal(cached.length, 4, 'a data file and a header per split');

      // the use side: the same images embedded from their files equal the head on the cached features
      const run = await loadTrainedRun(out);
      const listing = await listTrainingImages({ ...run.config, data: catalogue });
      const files = listing.train.files.slice(0, 6);
      const fromFeatures = tf.tidy(() => {
        const split = run.data.train as { inputs: Float32Array };
        const d = run.data.inputShape[0];
        return (
          run.model.predict(tf.tensor2d(split.inputs.subarray(0, 6 * d), [6, d])) as tf.Tensor
        ).arraySync();
      }) as number[][];
      run.model.dispose();
      const embedded = await embedInputs(out, { kind: 'images', files });
      assert.ok(maxRelDiff(embedded.embeddings, fromFeatures.flat()) < 1e-4);
      const encoder = await openRunEncoder(out);
      try {
        const query = await embedQueryImage(encoder, files[0]);
        assert.ok(maxRelDiff(query, fromFeatures[0]) < 1e-4);
      } finally {
        encoder.dispose();
      }
    });
  }

  it('a second run reuses the feature cache; views are cached too and train SimCLR', async () => {
    const cacheDir = join(dir, 'shared-cache');
    await train(
      await config(join(dir, 'views-a'), TINY_ONNX, { cacheDir, featureViews: 2, method: 'simclr' }),
      {
        progress: quietProgress(),
      },
    );
    const files = (await readdir(cacheDir)).filter((f) => f.endsWith('.f32')).sort();
    const before = await Promise.all(files.map((f) => stat(join(cacheDir, f)).then((s) => s.mtimeMs)));
    const header = JSON.parse(await readFile(join(cacheDir, files[0].replace('.f32', '.json')), 'utf8')) as {
      vectors: number;
    };
    assert.ok([1, 3].includes(header.vectors));
    await train(
      await config(join(dir, 'views-b'), TINY_ONNX, { cacheDir, featureViews: 2, method: 'simclr' }),
      {
        progress: quietProgress(),
      },
    );
    const afterTimes = await Promise.all(files.map((f) => stat(join(cacheDir, f)).then((s) => s.mtimeMs)));
    assert.deepEqual(afterTimes, before, 'the second run computed nothing');
    // a damaged cache is an error naming it, never reused
    const data = join(cacheDir, files[0]);
    const bytes = await readFile(data);
    bytes[10] ^= 0xff;
    await writeFile(data, bytes);
    await assert.rejects(
      train(await config(join(dir, 'views-c'), TINY_ONNX, { cacheDir, featureViews: 2, method: 'simclr' }), {
        progress: quietProgress(),
      }),
      /feature cache .* is damaged/,
    );
  });

  it('a changed backbone file is refused by name; --copy-backbone keeps a copy the run uses', async () => {
    const graph = await writeGraphModel(join(dir, 'graph-changing'));
    const out = join(dir, 'run-changing');
    await train(await config(out, graph), { progress: quietProgress() });
    const copied = join(dir, 'run-copied');
    await train(await config(copied, graph, { copyBackbone: true }), { progress: quietProgress() });
    const shard = join(graph, 'group1-shard1of1.bin');
    const bytes = await readFile(shard);
    bytes[0] ^= 1;
    await writeFile(shard, bytes);
    await assert.rejects(openRunEncoder(out), (error: Error) => {
      assert.match(error.message, /graph-changing/);
      assert.match(error.message, /has changed since the run recorded it/);
      return true;
    });
    const encoder = await openRunEncoder(copied);
    encoder.dispose();
  });

  it('an input size the model contradicts names both sizes', async () => {
    await assert.rejects(
      train(await config(join(dir, 'run-size'), TINY_ONNX, { backboneInputSize: 20 }), {
        progress: quietProgress(),
      }),
      /takes 16×16 images, but the input size asked for is 20×20/,
    );
  });
});

describe('alpha is composited on the background', () => {
  it('transparent pixels take the background colour, whatever colour the file hid there', async () => {
    const sharp = (await import('sharp')).default;
    const px = Buffer.from([255, 0, 0, 0, 10, 20, 30, 255, 0, 255, 0, 128, 0, 0, 0, 0]);
    const png = await sharp(px, { raw: { width: 2, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    const decode = (background: [number, number, number] | null) =>
      decodeImage(png, resolveDecodeOptions('test', { size: [2, 2], channels: 3, background }));
    const white = await decode([255, 255, 255]);
    assert.deepEqual(Array.from(white.subarray(0, 3)), [255, 255, 255]);
    assert.deepEqual(Array.from(white.subarray(3, 6)), [10, 20, 30]);
    const half = Array.from(white.subarray(6, 9));
    assert.ok(Math.abs(half[0] - 127) <= 1 && half[1] === 255 && Math.abs(half[2] - 127) <= 1, `${half}`);
    const black = await decode([0, 0, 0]);
    assert.deepEqual(Array.from(black.subarray(0, 3)), [0, 0, 0]);
    // none: the legacy behaviour, alpha dropped and the hidden red kept
    const none = await decode(null);
    assert.deepEqual(Array.from(none.subarray(0, 3)), [255, 0, 0]);
  });
});
