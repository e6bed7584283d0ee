/**
 * Image data benchmark: generates a synthetic image folder in a temporary directory, builds the
 * uint8 image cache (decode images/s, sharp in parallel), reopens it (reuse check), then reads
 * shuffled batches through the prefetching batch reader (read images/s), optionally with a
 * simulated training step so the share of each step spent waiting for data shows. Peak RSS comes
 * from `/usr/bin/time -v` when it exists (the script re-runs itself under it), else from
 * `process.resourceUsage()`. A script, never a test.
 *
 *   node dist/bench/data.js [--images 5000] [--size 64] [--channels 3] [--batch 256]
 *                           [--epochs 2] [--step-ms 0] [--concurrency N] [--keep <dir>]
 *                           [--encoder resnet-18|conv --steps 5 --backend wasm]
 *
 * With `--encoder`, each batch also runs one real forward and backward pass of that encoder on
 * two colour-augmented views (for `--steps` batches), and the data wait is a share of that step.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { colorAugment } from '../src/data/colorAugment.js';
import { ImageCache } from '../src/data/imageCache.js';
import { type BackendName, useBackend } from '../src/engine/backend.js';
import { buildEncoder, type EncoderName } from '../src/models/backbones.js';
import { Rng } from '../src/random.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const numImages = Number(arg('images', '5000'));
const size = Number(arg('size', '64'));
const channels = Number(arg('channels', '3')) === 1 ? 1 : 3;
const batchSize = Number(arg('batch', '256'));
const epochs = Number(arg('epochs', '2'));
const stepMs = Number(arg('step-ms', '0'));
const keep = arg('keep', '');
const concurrency = Number(arg('concurrency', '0')) || undefined;
const encoderName = arg('encoder', '');
const maxSteps = Number(arg('steps', '5'));

/** Re-runs this script under `/usr/bin/time -v` and prints its output plus the peak RSS. */
function runUnderTime(): boolean {
  if (process.env.CONTRASTIVE_BENCH_CHILD || !existsSync('/usr/bin/time')) return false;
  const result = spawnSync(
    '/usr/bin/time',
    ['-v', process.execPath, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    {
      env: { ...process.env, CONTRASTIVE_BENCH_CHILD: '1' },
      encoding: 'utf8',
      stdio: ['ignore', 'inherit', 'pipe'],
    },
  );
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr ?? '');
  const other = (result.stderr ?? '')
    .split('\n')
    .filter((l) => !/^\s/.test(l) && l.trim() !== '' && !/^\tCommand/.test(l));
  if (other.length) process.stderr.write(`${other.join('\n')}\n`);
  if (rss) console.log(`peak RSS (/usr/bin/time -v): ${(Number(rss[1]) / 1024).toFixed(0)} MiB`);
  process.exitCode = result.status ?? 1;
  return true;
}

/** A synthetic catalogue: `numImages` JPEGs of varied sizes in 10 class folders under 2 groups. */
async function generate(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (let c = 0; c < 10; c++)
    await mkdir(join(dir, c < 5 ? 'Clothes' : 'Goods', `class${c}`), { recursive: true });
  const rng = new Rng(1);
  let next = 0;
  const worker = async () => {
    const w = 80;
    const h = 72;
    const pixels = Buffer.alloc(w * h * 3);
    while (next < numImages) {
      const i = next++;
      const c = i % 10;
      const tint = [rng.int(256), rng.int(256), rng.int(256)];
      for (let k = 0; k < pixels.length; k++) {
        const p = Math.floor(k / 3);
        pixels[k] = (tint[k % 3] + (p % w) * (c + 1) + Math.floor(p / w) * 2 + rng.int(24)) & 255;
      }
      const file = join(dir, c < 5 ? 'Clothes' : 'Goods', `class${c}`, `${i}.jpg`);
      await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
        .jpeg({ quality: 85 })
        .toFile(file);
      files.push(file);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return files.sort();
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.jpg'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

async function main(): Promise<void> {
  if (runUnderTime()) return;
  const root = keep || (await mkdtemp(join(tmpdir(), 'contrastive-bench-data-')));
  try {
    const imagesDir = join(root, 'images');
    let files = existsSync(imagesDir) ? await listFiles(imagesDir) : [];
    if (files.length !== numImages) {
      await rm(imagesDir, { recursive: true, force: true });
      const t = performance.now();
      files = await generate(imagesDir);
      console.log(
        `generated ${files.length} JPEGs (80×72) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
      );
    }
    const cacheDir = join(root, 'cache');
    await rm(cacheDir, { recursive: true, force: true });
    const decodeOptions = { cacheDir, size: [size, size] as const, channels: channels as 1 | 3, concurrency };
    let t = performance.now();
    const cache = await ImageCache.open(files, decodeOptions);
    const decodeSeconds = (performance.now() - t) / 1000;
    console.log(
      `decode: ${files.length} images to ${size}×${size}×${channels} uint8 in ${decodeSeconds.toFixed(2)} s = ${(files.length / decodeSeconds).toFixed(0)} images/s (cache ${((files.length * cache.imageSize) / 2 ** 20).toFixed(0)} MiB)`,
    );
    await cache.close();
    t = performance.now();
    const reopened = await ImageCache.open(files, decodeOptions);
    console.log(
      `reopen: reused=${reopened.reused} in ${((performance.now() - t) / 1000).toFixed(2)} s (stat of every source)`,
    );
    const rng = new Rng(2);
    let step: ((inputs: Float32Array, n: number) => void) | null = null;
    if (encoderName) {
      await useBackend(arg('backend', 'wasm') as BackendName);
      const encoder = await buildEncoder({ encoder: encoderName as EncoderName, seed: 1 }, [
        size,
        size,
        channels,
      ]);
      const optimizer = tf.train.sgd(0.01);
      const variables = encoder.model.trainableWeights.map((w) => w.read() as tf.Variable);
      step = (inputs, n) => {
        tf.tidy(() => {
          const x = tf.tensor4d(inputs, [n, size, size, channels]);
          const [a, b] = [colorAugment(x, rng), colorAugment(x, rng)];
          optimizer.minimize(
            () =>
              tf.mean(
                tf.square(
                  tf.sub(
                    encoder.model.apply(a, { training: true }) as tf.Tensor,
                    encoder.model.apply(b, { training: true }) as tf.Tensor,
                  ),
                ),
              ) as tf.Scalar,
            false,
            variables,
          );
        });
      };
      console.log(
        `step: ${encoderName} forward+backward on 2 colour-augmented views per batch (${arg('backend', 'wasm')})`,
      );
    }
    let images = 0;
    let waited = 0;
    let stepping = 0;
    t = performance.now();
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = rng.permutation(files.length);
      const batches: Int32Array[] = [];
      for (let s = 0; s + batchSize <= order.length; s += batchSize)
        batches.push(order.subarray(s, s + batchSize));
      if (step) batches.splice(maxSteps);
      const reader = reopened.batchReader(batches);
      for (let b = await reader.next(); b; b = await reader.next()) {
        images += b.indices.length;
        waited += b.waitedMs;
        if (step) {
          const s0 = performance.now();
          step(b.inputs, b.indices.length);
          stepping += performance.now() - s0;
        } else if (stepMs > 0) {
          const s0 = performance.now();
          await new Promise((resolve) => setTimeout(resolve, stepMs));
          stepping += performance.now() - s0;
        }
      }
    }
    const readSeconds = (performance.now() - t) / 1000;
    await reopened.close();
    console.log(
      `read: ${images} images in batches of ${batchSize} (shuffled) in ${readSeconds.toFixed(2)} s = ${(images / readSeconds).toFixed(0)} images/s; waited for data ${waited.toFixed(0)} ms${stepping > 0 ? ` = ${((100 * waited) / (waited + stepping)).toFixed(1)} % of the time (${step ? `${(stepping / images).toFixed(1)} ms of training step per image` : `a ${stepMs} ms step per batch`})` : ''}`,
    );
    const rss = process.resourceUsage().maxRSS;
    console.log(`peak RSS (process.resourceUsage): ${(rss / 1024).toFixed(0)} MiB`);
  } finally {
    if (!keep) await rm(root, { recursive: true, force: true });
  }
}

await main();
