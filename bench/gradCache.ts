/**
 * GradCache benchmark: one contrastive step (SupCon over `--batch` × 2 grey-augmented views of
 * 28×28 images, the small conv encoder + projection head, AdamW) with and without
 * `--grad-cache-chunk`, each configuration in its own process (so a heap exhaustion ends only that
 * one, and peak RSS is its own). Prints per configuration: the median step time, the peak bytes
 * held by tfjs tensors during one step (`tf.profile`), the wasm heap's size after the steps (it
 * only grows: its peak) and the process's peak RSS. A script, never a test.
 *
 *   node dist/bench/gradCache.js [--batch 1024] [--chunk 128] [--steps 3] [--size 28]
 *                                [--encoder conv] [--backend wasm] [--method supcon]
 *                                [--timeout-s 300] [--half]
 *
 * Runs `--batch` plain and with `--chunk` (with `--half`, the same at half the batch too).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { augmentImages } from '../src/data/augment.js';
import type { RunData } from '../src/data/runData.js';
import { type BackendName, useBackend } from '../src/engine/backend.js';
import { Rng } from '../src/random.js';
import { resolveTrainConfig, type TrainConfig } from '../src/train/config.js';
import { METHOD_REGISTRY } from '../src/train/methods/registry.js';
import { Optimizer } from '../src/train/optimizers.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const batch = Number(arg('batch', '1024'));
const chunk = Number(arg('chunk', '128'));
const steps = Number(arg('steps', '3'));
const size = Number(arg('size', '28'));
const encoder = arg('encoder', 'conv');
const backend = arg('backend', 'wasm') as BackendName;
const method = arg('method', 'supcon') as 'supcon' | 'simclr' | 'himulcone';
const timeoutS = Number(arg('timeout-s', '300'));

interface Measured {
  ms: number;
  peakTensorMiB: number;
  wasmHeapMiB?: number;
  rssMiB: number;
  loss: number;
}

const MiB = 2 ** 20;

/** One configuration, in this process: a warm-up step, `steps` timed ones, one profiled. */
async function child(gradCacheChunk: number): Promise<Measured> {
  await useBackend(backend);
  const config = (await resolveTrainConfig({
    out: 'unused',
    method,
    encoder,
    batchSize: batch,
    gradCacheChunk,
  })) as TrainConfig;
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const data = {
    kind: 'image',
    inputShape: [size, size, 1],
    train: { size: batch, labels },
    tree: { depth: 1, levelSizes: [10], levelNames: ['class'] },
  } as unknown as RunData;
  const m = METHOD_REGISTRY[method];
  const models = await m.build(config, data);
  const optimizer = new Optimizer(models.trainable, { kind: 'adamw', weightDecay: 1e-4 });
  const rng = new Rng(1);
  const x = tf.tidy(() => tf.randomUniform([batch, size, size, 1], 0, 1, 'float32', 3));
  const inputs = {
    x,
    labels: Array.from(labels, (l) => [l]),
    augment: (b: tf.Tensor) => augmentImages(b as tf.Tensor4D, rng),
    learningRate: 1e-3,
    step: 0,
    stepsPerEpoch: 1,
    mixRng: new Rng(2),
  };
  const step = () => m.step(models, optimizer, inputs, config).loss;
  let loss = step();
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    loss = step();
    times.push(performance.now() - t0);
  }
  const profile = await tf.profile(() => {
    step();
  });
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.buffer.byteLength;
  times.sort((a, b) => a - b);
  return {
    ms: times[Math.floor(times.length / 2)],
    peakTensorMiB: profile.peakBytes / MiB,
    wasmHeapMiB: heap === undefined ? undefined : heap / MiB,
    rssMiB: process.resourceUsage().maxRSS / 1024,
    loss,
  };
}

function run(rows: number, gradCacheChunk: number): string {
  const args = [
    fileURLToPath(import.meta.url),
    '--child',
    String(gradCacheChunk),
    ...['--batch', String(rows), '--steps', String(steps), '--size', String(size)],
    ...['--encoder', encoder, '--backend', backend, '--method', method],
  ];
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    maxBuffer: 2 ** 26,
    timeout: timeoutS * 1000,
    killSignal: 'SIGKILL',
  });
  const label =
    `${rows} × 2 views, ${gradCacheChunk > 0 ? `--grad-cache-chunk ${gradCacheChunk}` : 'plain'}`.padEnd(40);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) {
    if (r.signal === 'SIGKILL') return `${label} did not finish in ${timeoutS} s (stopped)`;
    const why = /out of memory|Aborted|memory access out of bounds/i.test(r.stderr + r.stdout)
      ? 'out of memory (wasm heap)'
      : `failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0]?.slice(0, 120)}`;
    return `${label} ${why}`;
  }
  const m = JSON.parse(line) as Measured;
  return `${label} ${m.ms.toFixed(0).padStart(7)} ms  ${m.peakTensorMiB.toFixed(0).padStart(6)} MiB  ${(m.wasmHeapMiB?.toFixed(0) ?? '—').padStart(6)} MiB  ${m.rssMiB.toFixed(0).padStart(6)} MiB  loss ${m.loss.toFixed(4)}`;
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  console.log(JSON.stringify(await child(Number(process.argv[childIndex + 1]))));
} else {
  console.log(
    `${method}, ${encoder} encoder, ${size}×${size}×1, ${backend}: median of ${steps} steps after a warm-up; peak tensor bytes of one step (tf.profile), wasm heap size after the steps, peak RSS`,
  );
  console.log(
    `${'configuration'.padEnd(40)} ${'step'.padStart(10)}  ${'tensors'.padStart(10)}  ${'heap'.padStart(10)}  ${'RSS'.padStart(10)}`,
  );
  for (const rows of process.argv.includes('--half') ? [batch, batch / 2] : [batch]) {
    for (const c of [0, chunk]) console.log(run(rows, c));
  }
}
