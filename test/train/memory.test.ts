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
import sharp from 'sharp';
import { closeRunData, isCachedSplit, loadRunData } from '../../src/data/runData.js';
import { useBackend } from '../../src/engine/backend.js';
import { Rng } from '../../src/random.js';
import { encodeCheckpoint } from '../../src/train/checkpoint.js';
import { trainLoop } from '../../src/train/loop.js';
import type { Method } from '../../src/train/methods/registry.js';
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
});
