/**
 * The fused Adam / AdamW update (native/optimizer.c) gives the same weights and moments as the
 * tfjs ops it replaces, bit for bit: the library's optimiser on wasm (fused where the addon is
 * loaded, the ops with CONTRASTIVE_NATIVE=0) against the same optimiser on cpu (always the ops).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { fusedAdamAvailable } from '../../src/engine/kernels/optimizer.js';
import { loadNative } from '../../src/engine/native.js';
import { Rng } from '../../src/random.js';
import { Optimizer, type OptimizerOptions } from '../../src/train/optimizers.js';

/** Odd shapes: a matrix, a bias, a conv kernel, and one past the 2^20 elements where the loop is threaded. */
const SHAPES: number[][] = [[7, 13], [5], [3, 3, 2, 5], [1031, 1019]];

/** Values with a few exact zeros and some large and tiny magnitudes, deterministic. */
function values(rng: Rng, size: number, scale: number): Float32Array {
  return Float32Array.from({ length: size }, (_, i) =>
    i % 53 === 0 ? 0 : scale * rng.normal() * (i % 7 === 0 ? 1e3 : i % 11 === 0 ? 1e-4 : 1),
  );
}

/** `steps` updates of `options` from fixed weights and gradients; the final weights and moments. */
async function train(
  backend: 'cpu' | 'wasm',
  options: OptimizerOptions,
  shapes: number[][],
  steps: number,
  resumeAt?: number,
): Promise<Float32Array[]> {
  await useBackend(backend);
  const rng = new Rng(7);
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const variables = shapes.map((s) => tf.variable(tf.tensor(values(rng, size(s), 1), s)));
  let optimizer = new Optimizer(variables, options);
  for (let t = 0; t < steps; t++) {
    if (t === resumeAt) {
      // a checkpoint round trip in the middle: a new optimiser from the saved state
      const state = optimizer.state();
      optimizer.dispose();
      optimizer = new Optimizer(variables, options);
      optimizer.setState(state);
    }
    const grads = shapes.map((s) => tf.tensor(values(rng, size(s), 0.1), s));
    optimizer.applyGradients(grads, 1e-3 * (1 + (t % 3)));
    tf.dispose(grads);
  }
  const slots = optimizer.state().slots.map((s) => s.data);
  const out = [...variables.map((v) => v.dataSync() as Float32Array), ...slots];
  optimizer.dispose();
  tf.dispose(variables);
  return out;
}

function assertSame(actual: Float32Array[], expected: Float32Array[], label: string): void {
  assert.equal(actual.length, expected.length, label);
  actual.forEach((a, k) => {
    assert.equal(a.length, expected[k].length, `${label}: tensor ${k}`);
    for (let i = 0; i < a.length; i++) {
      if (!Object.is(a[i], expected[k][i]))
        assert.fail(`${label}: tensor ${k}, element ${i} is ${a[i]}, expected ${expected[k][i]}`);
    }
  });
}

it('the fused update is used on wasm exactly when the addon has it', async () => {
  await useBackend('wasm');
  assert.equal(fusedAdamAvailable(), typeof loadNative()?.adam === 'function');
  await useBackend('cpu');
  assert.equal(fusedAdamAvailable(), false);
});

for (const options of [
  { kind: 'adam' },
  { kind: 'adam', weightDecay: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6 },
  { kind: 'adamw', weightDecay: 0.05, learningRateScales: [1, 0.1, 2, 1] },
] as OptimizerOptions[]) {
  it(`${JSON.stringify(options)}: 100 steps on wasm equal cpu's bit for bit, weights and moments`, async () => {
    const small = SHAPES.slice(0, 3);
    assertSame(
      await train('wasm', options, small, 100),
      await train('cpu', options, small, 100),
      'small shapes',
    );
    // the threaded size: a few steps (the cpu ops on a million elements are slow)
    const large = SHAPES.slice(3);
    const opts = { ...options, learningRateScales: undefined };
    assertSame(await train('wasm', opts, large, 3), await train('cpu', opts, large, 3), '[1031, 1019]');
  });
}

it('a checkpoint round trip in the middle changes nothing (resume stays bit-identical)', async () => {
  const options: OptimizerOptions = { kind: 'adamw', weightDecay: 0.01 };
  const small = SHAPES.slice(0, 3);
  assertSame(
    await train('wasm', options, small, 30, 17),
    await train('wasm', options, small, 30),
    'resumed at step 17',
  );
});
