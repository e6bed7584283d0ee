/**
 * Training holds its memory steady: after a warm-up step (optimiser slots are made on the first),
 * tensors, their bytes and the wasm heap in use are back at the same level after every step, every
 * epoch's quick kNN and every checkpoint, for view and momentum methods, from memory and from the
 * image cache. A user's run grew by V input batches a step until the 4 GiB heap gave out.
 */
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { closeRunData, isCachedSplit, loadRunData } from '../../src/data/runData.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { Rng } from '../../src/random.js';
import { encodeCheckpoint } from '../../src/train/checkpoint.js';
import { trainLoop } from '../../src/train/loop.js';
import { type Method, trainingMethod } from '../../src/train/methods/registry.js';
import type { TrainingMethod } from '../../src/train/methods/types.js';
import { type MemoryLevel, memoryLevel, trackWasmHeap, type WasmHeapTracker } from '../helpers/memory.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

describe('steady memory while training', () => {
  let dir: string;
  let images: string;
  let heap: WasmHeapTracker;
  before(async () => {
    dir = await tempRuns();
    images = join(dir, 'photos');
    // 2 groups × 2 classes × 12 colour images: a 2-level tree (himulcone uses both levels)
    const rng = new Rng(7);
    for (const [c, path] of ['Clothes/Shirt', 'Clothes/Dress', 'Goods/Bag', 'Goods/Shoe'].entries()) {
      await mkdir(join(images, path), { recursive: true });
      for (let i = 0; i < 12; i++) {
        const pixels = Buffer.from(
          Array.from({ length: 12 * 12 * 3 }, (_, k) => (50 * c + (k % 36) * (c + 1) + rng.int(60)) & 255),
        );
        await sharp(pixels, { raw: { width: 12, height: 12, channels: 3 } })
          .png()
          .toFile(join(images, path, `${i}.png`));
      }
    }
    await useBackend('wasm');
    heap = trackWasmHeap();
  });
  after(async () => {
    heap.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const cases: [Method, 'memory' | 'stream'][] = [
    ['supcon', 'memory'],
    ['supcon', 'stream'],
    ['himulcone', 'memory'],
    ['himulcone', 'stream'],
    ['moco', 'memory'],
    ['moco', 'stream'],
  ];
  for (const [method, source] of cases) {
    it(`${method}, batches ${source === 'stream' ? 'streamed from the image cache' : 'in memory'}: the same level after every step`, async () => {
      const config = await smallConfig(join(dir, `${method}-${source}`), {
        data: images,
        channels: 3,
        imageSize: 8,
        method,
        batchSize: 8,
        epochs: 20,
        logEvery: 1,
        evalEvery: 10,
        queueSize: 64,
      });
      const data = await loadRunData({
        ...config,
        stream: source === 'stream' ? 'on' : 'off',
        cacheDir: join(dir, `${method}-${source}-cache`),
      });
      assert.equal(isCachedSplit(data.train), source === 'stream');
      // one record after every step (logEvery 1) and after every epoch's kNN: each at a point
      // where the step's tensors are gone
      const levels: { step: number; kind: string; level: MemoryLevel }[] = [];
      const start = memoryLevel(heap);
      try {
        const result = await trainLoop(config, data, {
          progress: quietProgress(),
          record: (r) => levels.push({ step: r.step, kind: r.kind, level: memoryLevel(heap) }),
          saveCheckpoint: async (checkpoint) => {
            encodeCheckpoint(checkpoint);
          },
          saveModel: async () => undefined,
        });
        assert.ok(Number.isFinite(result.finalLoss));
      } finally {
        await closeRunData(data);
      }
      const steps = levels.filter((l) => l.kind === 'step');
      assert.ok(steps.length >= 100, `${steps.length} steps`);
      // warm-up: the first step makes the optimiser's slots
      const steady = steps[1].level;
      for (const { step, kind, level } of levels.filter((l) => l.step >= 2)) {
        assert.deepEqual(
          level,
          steady,
          `after ${kind === 'epoch' ? 'the epoch ending at ' : ''}step ${step}: ${JSON.stringify(level)}, against ${JSON.stringify(steady)} after step 2`,
        );
      }
      // and everything the run made is released at its end
      assert.deepEqual(memoryLevel(heap), start);
    });
  }

  /**
   * Runs supcon in memory with its step wrapped: `keep` tensors it keeps each step, and the wasm
   * module's abort at step `abortAt`; returns the error the loop turns that into.
   */
  async function exhaust(abortAt: number, keep: () => tf.Tensor | undefined): Promise<Error> {
    const config = await smallConfig(join(dir, `exhaust-${abortAt}`), {
      data: images,
      channels: 3,
      imageSize: 8,
      method: 'supcon',
      batchSize: 8,
      epochs: 20,
      evalEvery: 0,
    });
    const data = await loadRunData({ ...config, stream: 'off', cacheDir: join(dir, 'unused') });
    const method = trainingMethod('supcon');
    const step = method.step;
    const kept: tf.Tensor[] = [];
    let steps = 0;
    method.step = (...args: Parameters<TrainingMethod['step']>) => {
      if (++steps === abortAt) throw new Error('Aborted(). Build with -sASSERTIONS for more info.');
      const t = keep();
      if (t) kept.push(t);
      return step(...args);
    };
    try {
      await trainLoop(config, data, {
        progress: quietProgress(),
        record: () => undefined,
        saveCheckpoint: async () => undefined,
        saveModel: async () => undefined,
      });
    } catch (error) {
      return error as Error;
    } finally {
      method.step = step;
      tf.dispose(kept);
      await closeRunData(data);
    }
    assert.fail('the run did not fail');
  }

  it('a heap exhaustion says what was measured: a step too big for the heap → lower --batch-size', async () => {
    const error = await exhaust(6, () => undefined);
    assert.ok(error instanceof ContrastiveError, String(error));
    assert.match(
      error.message,
      /ran out of memory at epoch 2, step 6 \(batch size 8 × 2 views; one batch of inputs is 6 KiB\)/,
    );
    assert.match(
      error.message,
      /Tensors in use: .* when it failed, .* at the start of step 6, .* at the start of step 2\./,
    );
    assert.match(error.message, /The wasm heap had reserved/);
    assert.match(error.message, /held steady between steps.*lower --batch-size/);
    assert.doesNotMatch(error.message, /leak/);
  });

  it('a heap exhaustion after memory grew from step to step is called a leak, not a batch too big', async () => {
    // 2 MiB kept each step: past the 64 MiB that separates a leak from noise by step ~35
    const error = await exhaust(40, () => tf.zeros([512 * 1024]));
    assert.ok(error instanceof ContrastiveError, String(error));
    assert.match(error.message, /Memory grew by 76 MiB over 38 steps \(2 MiB a step, 341\.3 input batches\)/);
    assert.match(error.message, /a leak, not the batch size/);
    assert.doesNotMatch(error.message, /lower --batch-size/);
  });
});
