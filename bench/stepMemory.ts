/**
 * Memory per training step: trains each `method:source[:encoder]` on a synthetic colour folder
 * (`--images` images of `--size`², 4 classes under 2 groups) with the loop's own code, and
 * prints tensors, their bytes and the wasm heap in use (the module's malloc minus free, see
 * `test/helpers/memory.ts`) after step 2 and after the last, and the mean growth a step. A
 * steady loop grows by 0. A script, never a test (`test/train/memory.test.ts` is the test).
 *
 *   node dist/bench/stepMemory.js [--images 400] [--size 32] [--batch 64] [--epochs 3]
 *        supcon:memory supcon:stream himulcone:memory moco:stream ce:memory supcon:memory:conv …
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { closeRunData, loadRunData } from '../src/data/runData.js';
import { useBackend } from '../src/engine/backend.js';
import { Rng } from '../src/random.js';
import type { TrainConfig } from '../src/train/config.js';
import { trainLoop } from '../src/train/loop.js';
import type { Method } from '../src/train/methods/registry.js';
import { byteSize } from '../src/train/stepMemory.js';
import { type MemoryLevel, memoryLevel, trackWasmHeap } from '../test/helpers/memory.js';
import { quietProgress, smallConfig } from '../test/helpers/train.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}
const flags = new Set(['--images', '--size', '--batch', '--epochs']);
const specs = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !flags.has(all[i - 1]));
const numImages = Number(arg('images', '400'));
const size = Number(arg('size', '32'));
const batchSize = Number(arg('batch', '64'));
const epochs = Number(arg('epochs', '3'));

await useBackend('wasm');
const heap = trackWasmHeap();
const dir = await mkdtemp(join(tmpdir(), 'contrastive-step-memory-'));
try {
  const images = join(dir, 'photos');
  const rng = new Rng(3);
  for (const [c, path] of ['A/a', 'A/b', 'B/c', 'B/d'].entries()) {
    await mkdir(join(images, path), { recursive: true });
    for (let i = 0; i < numImages / 4; i++) {
      const pixels = Buffer.from(
        Array.from({ length: size * size * 3 }, (_, k) => (60 * c + k + rng.int(40)) & 255),
      );
      await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toFile(join(images, path, `${i}.png`));
    }
  }
  for (const spec of specs.length > 0 ? specs : ['supcon:memory', 'supcon:stream', 'moco:memory']) {
    const [method, source, encoder] = spec.split(':');
    const name = spec.replace(/:/g, '-');
    const config = await smallConfig(join(dir, name), {
      data: images,
      channels: 3,
      imageSize: size,
      method: method as Method,
      batchSize,
      epochs,
      logEvery: 1,
      evalEvery: 1,
      ...(encoder ? { encoder: encoder as TrainConfig['encoder'] } : {}),
    });
    const data = await loadRunData({
      ...config,
      stream: source === 'stream' ? 'on' : 'off',
      cacheDir: join(dir, `${name}-cache`),
    });
    const levels: MemoryLevel[] = [];
    try {
      await trainLoop(config, data, {
        progress: quietProgress(),
        record: (r) => {
          if (r.kind === 'step') levels.push(memoryLevel(heap));
        },
        saveCheckpoint: async () => undefined,
        saveModel: async () => undefined,
      });
    } finally {
      await closeRunData(data);
    }
    const [steady, last] = [levels[1], levels[levels.length - 1]];
    const steps = levels.length - 2;
    const perStep = (key: keyof MemoryLevel) => (last[key] - steady[key]) / steps;
    console.log(
      `${spec.padEnd(22)} ${levels.length} steps; heap in use ${byteSize(steady.heapInUse)} after step 2, ${byteSize(last.heapInUse)} after the last; a step: ${perStep('heapInUse') >= 0 ? '+' : ''}${byteSize(perStep('heapInUse'))} heap, +${byteSize(perStep('numBytes'))} tensor bytes, +${perStep('numTensors').toFixed(1)} tensors`,
    );
  }
} finally {
  heap.stop();
  await rm(dir, { recursive: true, force: true });
}
