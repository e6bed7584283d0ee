import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadTrainingData } from '../../src/data/dataset.js';
import {
  closeRunData,
  isCachedSplit,
  isStreamed,
  loadRunData,
  type RunData,
  readSplitRows,
} from '../../src/data/runData.js';
import { ContrastiveError } from '../../src/errors.js';
import { Rng } from '../../src/random.js';
import { loadRun } from '../../src/report/index.js';
import { evaluateRun } from '../../src/run/evaluateRun.js';
import { dataFingerprint } from '../../src/run/fingerprint.js';
import { RunFolder } from '../../src/run/folder.js';
import { train } from '../../src/run/train.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

/** All rows of a split, as floats, whichever way it is held. */
async function allRows(data: RunData, split: 'train' | 'test'): Promise<Float32Array> {
  const dim = data.inputShape.reduce((a, b) => a * b, 1);
  const s = data[split];
  const out = new Float32Array(s.size * dim);
  await readSplitRows(
    s,
    dim,
    Array.from({ length: s.size }, (_, i) => i),
    out,
  );
  return out;
}

describe('streamed training (image cache)', () => {
  let dir: string;
  let images: string;
  before(async () => {
    dir = await tempRuns();
    images = join(dir, 'photos');
    // 2 groups × 2 classes × 15 colour photos of varied sizes
    const rng = new Rng(3);
    for (const [c, path] of ['Clothes/Shirt', 'Clothes/Dress', 'Goods/Bag', 'Goods/Shoe'].entries()) {
      await mkdir(join(images, path), { recursive: true });
      for (let i = 0; i < 15; i++) {
        const w = 14 + (i % 5);
        const h = 12 + (i % 3);
        const tint = [60 * c, 255 - 50 * c, (97 * c) % 256];
        const pixels = Buffer.from(
          Array.from(
            { length: w * h * 3 },
            (_, k) => (tint[k % 3] + (k % (w * 3)) * (c + 1) + rng.int(40)) & 255,
          ),
        );
        await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
          .png()
          .toFile(join(images, path, `${i}.png`));
      }
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const config = (name: string, overrides: Parameters<typeof smallConfig>[1] = {}) =>
    smallConfig(join(dir, name), {
      data: images,
      channels: 3,
      imageSize: 10,
      method: 'supcon',
      batchSize: 16,
      epochs: 2,
      logEvery: 2,
      ...overrides,
    });

  it('gives the same dataset as the in-memory path: tree, labels, rows as tensors, fingerprint', async () => {
    const options = { ...(await config('dataset')), cacheDir: join(dir, 'dataset-cache') };
    const memory = await loadTrainingData(options);
    const streamed = await loadRunData({ ...options, stream: 'on' });
    try {
      assert.ok(isCachedSplit(streamed.train) && isCachedSplit(streamed.test));
      assert.equal(isStreamed(streamed), true);
      assert.deepEqual(streamed.tree.toJSON(), memory.tree.toJSON());
      assert.deepEqual(streamed.inputShape, memory.inputShape);
      for (const split of ['train', 'test'] as const) {
        assert.equal(streamed[split].size, memory[split].size);
        assert.deepEqual(streamed[split].labels, memory[split].labels);
        assert.deepEqual(await allRows(streamed, split), memory[split].inputs, `${split} rows`);
      }
      assert.deepEqual(await dataFingerprint(streamed), {
        ...(await dataFingerprint(memory)),
        source: streamed.source,
      });
      // auto: a small folder stays in memory
      const auto = await loadRunData({ ...options, stream: 'auto' });
      assert.equal(isStreamed(auto), false);
    } finally {
      await closeRunData(streamed);
    }
  });

  it('--stream on is refused for Fashion-MNIST and with --skip-unreadable', async () => {
    const fashion = await smallConfig(join(dir, 'fm'));
    await assert.rejects(
      loadRunData({ ...fashion, stream: 'on', cacheDir: join(dir, 'unused') }),
      (e: Error) => e instanceof ContrastiveError && /--stream on .*Fashion-MNIST/.test(e.message),
    );
    const skipping = await config('skip', { skipUnreadable: true });
    await assert.rejects(
      loadRunData({ ...skipping, stream: 'on', cacheDir: join(dir, 'unused') }),
      (e: Error) => e instanceof ContrastiveError && /--skip-unreadable/.test(e.message),
    );
  });

  it('trains, resumes bit-identically after stopAfterSteps, matches the in-memory run, and evaluates', async () => {
    const straight = await config('straight', { stream: 'on' });
    await train(straight, { progress: quietProgress() });
    const cut = await config('cut', { stream: 'on' });
    const first = await train(cut, { progress: quietProgress(), stopAfterSteps: 4 });
    assert.equal(first.interrupted, true);
    await train({ ...cut, resume: true }, { progress: quietProgress() });
    const memory = await config('memory', { stream: 'off' });
    await train(memory, { progress: quietProgress() });

    const weights = (name: string) => readFile(join(dir, name, 'model', 'weights.bin'));
    assert.ok((await weights('straight')).equals(await weights('cut')), 'resumed weights differ');
    assert.ok((await weights('straight')).equals(await weights('memory')), 'in-memory weights differ');
    const history = async (name: string) => (await loadRun(join(dir, name))).history;
    const losses = async (name: string) => (await history(name)).map((h) => [h.kind, h.step, h.loss]);
    assert.deepEqual(await losses('cut'), await losses('straight'));
    assert.deepEqual(await losses('memory'), await losses('straight'));
    const steps = (await history('straight')).filter((h) => h.kind === 'step');
    assert.ok(steps.length > 0);
    for (const s of steps) {
      const share = (s as { dataWaitShare?: number }).dataWaitShare;
      assert.ok(typeof share === 'number' && share >= 0 && share <= 1, `dataWaitShare ${share}`);
    }
    // the data fingerprint of a streamed run equals the in-memory one's
    const fingerprint = async (name: string) => {
      const saved = await new RunFolder(join(dir, name)).readFingerprint('test');
      return { train: saved?.train, test: saved?.test };
    };
    assert.deepEqual(await fingerprint('straight'), await fingerprint('memory'));
    // the cache went into the run folder, and nothing else was left there
    const cacheFiles = await readdir(join(dir, 'straight', 'cache'));
    assert.equal(cacheFiles.filter((f) => f.endsWith('.u8')).length, 2, cacheFiles.join(', '));
    assert.deepEqual(
      cacheFiles.filter((f) => f.endsWith('.tmp')),
      [],
    );

    const streamedEval = await evaluateRun(join(dir, 'straight'), { backend: 'wasm', knnK: 5, strips: 2 });
    const memoryEval = await evaluateRun(join(dir, 'memory'), { backend: 'wasm', knnK: 5, strips: 2 });
    assert.deepEqual(streamedEval.knn, memoryEval.knn);
    assert.deepEqual(streamedEval.retrieval, memoryEval.retrieval);
    assert.deepEqual(streamedEval.baselines, memoryEval.baselines);
    assert.equal(streamedEval.strips?.length, 2);
  });

  it('a run folder holding only a cache (killed while decoding) counts as empty', async () => {
    const out = join(dir, 'killed');
    await mkdir(join(out, 'cache'), { recursive: true });
    await sharp({ create: { width: 1, height: 1, channels: 3, background: 'red' } })
      .png()
      .toFile(join(out, 'cache', 'images-00ff.u8.123-456.tmp'));
    assert.equal(await new RunFolder(out).state(), 'empty');
    await sharp({ create: { width: 1, height: 1, channels: 3, background: 'red' } })
      .png()
      .toFile(join(out, 'cache', 'holiday.png'));
    assert.equal(await new RunFolder(out).state(), 'foreign');
  });
});
