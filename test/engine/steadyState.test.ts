/** A steady training loop allocates nothing new: 1,000 steps keep tensors, the wasm heap and RSS flat. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { useBackend } from '../../src/engine/backend.js';
import { supConLoss } from '../../src/losses/supCon.js';
import { Rng } from '../../src/random.js';
import { Optimizer } from '../../src/train/optimizers.js';

it('1,000 training steps on wasm: numTensors, wasm heap and RSS stay flat after warm-up', async () => {
  await useBackend('wasm');
  const rng = new Rng(3);
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [16], units: 32, activation: 'relu' }),
      tfl.layers.dense({ units: 8 }),
    ],
  });
  const optimizer = new Optimizer(
    model.trainableWeights.map((w) => w.read() as tf.Variable),
    { kind: 'adamw', weightDecay: 0.01 },
  );
  const x = tf.tensor2d(
    Float32Array.from({ length: 64 * 16 }, () => rng.normal()),
    [64, 16],
  );
  const labels = Array.from({ length: 32 }, () => rng.int(4));
  const heap = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
  const step = () => {
    const { loss } = optimizer.step(() => {
      const z = model.apply(x) as tf.Tensor2D;
      return supConLoss(tf.transpose(tf.reshape(z, [2, 32, 8]), [1, 0, 2]), labels, { temperature: 0.2 });
    }, 1e-3);
    loss.dispose();
  };
  for (let s = 0; s < 100; s++) step();
  const [tensors, heapBytes, rss] = [tf.memory().numTensors, heap(), process.memoryUsage().rss];
  for (let s = 0; s < 900; s++) step();
  assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
  assert.equal(heap(), heapBytes, 'the wasm heap grew');
  const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
  assert.ok(grown < 64, `RSS grew by ${grown.toFixed(1)} MiB over 900 steps`);
  optimizer.dispose();
  model.dispose();
  x.dispose();
});
