/**
 * Every native convolution form (oneDNN where built with it, im2col + OpenBLAS, and the wasm
 * fallback) against the cpu backend: forward fused with bias + ReLU, and both gradients, on odd
 * shapes, strides 1 and 2, same and valid padding, 1 × 1 kernels and batch 1.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import {
  nativeConvCounts,
  nativeConvPath,
  setOneDnnConvolutions,
  setPointwiseConvolutions,
} from '../../src/engine/kernels/conv.js';
import { nativeStatus } from '../../src/engine/native.js';
import { Rng } from '../../src/random.js';
import { compareCasesWithCpu, expectClose } from '../helpers/backends.js';

interface ConvCase {
  x: [number, number, number, number];
  filter: [number, number, number, number];
  strides: number | [number, number];
  pad: 'same' | 'valid';
}

const CASES: ConvCase[] = [
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 5], strides: 1, pad: 'same' },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 5], strides: 2, pad: 'same' },
  { x: [3, 11, 7, 5], filter: [3, 3, 5, 7], strides: 2, pad: 'valid' },
  { x: [1, 8, 8, 4], filter: [1, 1, 4, 6], strides: 1, pad: 'valid' },
  { x: [2, 10, 10, 4], filter: [1, 1, 4, 6], strides: 2, pad: 'same' },
  { x: [1, 13, 13, 1], filter: [5, 5, 1, 3], strides: 1, pad: 'same' },
  { x: [2, 7, 6, 2], filter: [2, 3, 2, 3], strides: [2, 1], pad: 'valid' },
  { x: [1, 6, 6, 16], filter: [3, 3, 16, 8], strides: 2, pad: 'same' },
];

/** 1×1 kernels without padding (the pointwise form): odd sizes, strides 1, 2 and [2, 3]. */
const POINTWISE_CASES: ConvCase[] = [
  { x: [1, 8, 8, 4], filter: [1, 1, 4, 6], strides: 1, pad: 'valid' },
  { x: [2, 10, 10, 4], filter: [1, 1, 4, 6], strides: 2, pad: 'same' },
  { x: [3, 7, 9, 5], filter: [1, 1, 5, 3], strides: 2, pad: 'same' },
  { x: [2, 7, 8, 3], filter: [1, 1, 3, 7], strides: [2, 3], pad: 'valid' },
  { x: [1, 5, 5, 1], filter: [1, 1, 1, 2], strides: 2, pad: 'valid' },
];

const rng = new Rng(15);
const normal = (shape: number[]) =>
  Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());

interface ConvData {
  x: Float32Array;
  filter: Float32Array;
  bias: Float32Array;
  /** One weight per output element, so every gradient entry depends on where it came from. */
  weights: Float32Array;
}

function convData(c: ConvCase): ConvData {
  const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad);
  return {
    x: normal(c.x),
    filter: normal(c.filter),
    bias: normal([c.filter[3]]),
    weights: normal([c.x[0], info.outHeight, info.outWidth, c.filter[3]]),
  };
}

/** The fused forward and the gradients w.r.t. input, filter and bias of a weighted sum of it. */
function convResults(c: ConvCase, data: ConvData) {
  return tf.tidy(() => {
    const x = tf.tensor4d(data.x, c.x);
    const filter = tf.tensor4d(data.filter, c.filter);
    const bias = tf.tensor1d(data.bias);
    const forward = (a: tf.Tensor, f: tf.Tensor, b: tf.Tensor) =>
      tf.fused.conv2d({
        x: a as tf.Tensor4D,
        filter: f as tf.Tensor4D,
        strides: c.strides,
        pad: c.pad,
        bias: b,
        activation: 'relu',
      });
    const y = forward(x, filter, bias);
    const weights = tf.tensor(data.weights, y.shape);
    const [gx, gf, gb] = tf.grads((a: tf.Tensor, f: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(forward(a, f, b), weights)),
    )([x, filter, bias]);
    // the plain (unfused) forward and its gradients go through Conv2D without bias/ReLU
    const plain = tf.conv2d(x, filter, c.strides, c.pad);
    const [px, pf] = tf.grads((a: tf.Tensor, f: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, c.strides, c.pad), weights)),
    )([x, filter]);
    return [y, gx, gf, gb, plain, px, pf].map((t) => t.dataSync());
  });
}

const LABELS = [
  'fused forward',
  'input gradient',
  'filter gradient',
  'bias gradient',
  'forward',
  'plain input gradient',
  'plain filter gradient',
];

const compareWithCpu = (describePath: string) =>
  compareCasesWithCpu(CASES, convData, convResults, LABELS, describePath);

const native = nativeStatus();
/** What the addon takes by default here: oneDNN unless built without it or CONTRASTIVE_ONEDNN=0. */
const startPath = nativeConvPath();
const oneDnnOn = startPath?.startsWith('oneDNN') ?? false;

describe('convolutions against cpu', () => {
  after(() => {
    if (oneDnnOn) setOneDnnConvolutions(true);
    setPointwiseConvolutions(true);
  });

  it('the pointwise form (1×1, no padding: one sgemm) matches cpu, with oneDNN on and off', {
    skip:
      native.available && setPointwiseConvolutions(true) ? false : native.detail || 'addon built before it',
  }, async () => {
    for (const on of oneDnnOn ? [true, false] : [false]) {
      setOneDnnConvolutions(on);
      const before = nativeConvCounts()!;
      await compareCasesWithCpu(POINTWISE_CASES, convData, convResults, LABELS, `pointwise, oneDNN ${on}`);
      const calls = nativeConvCounts()!;
      // forward twice (fused, plain), each gradient twice, per case
      assert.ok(
        calls.pointwise - before.pointwise >= 6 * POINTWISE_CASES.length,
        `the pointwise form ran ${calls.pointwise - before.pointwise} times`,
      );
      assert.equal(calls.onednn, before.onednn, 'a 1×1 case reached oneDNN');
      assert.equal(calls.im2col, before.im2col, 'a 1×1 case reached im2col');
    }
    if (oneDnnOn) setOneDnnConvolutions(true);
  });

  it('oneDNN (forward + bias + ReLU, both gradients) matches cpu', {
    skip: oneDnnOn ? false : `native convolutions: ${startPath ?? native.detail}`,
  }, async () => {
    setOneDnnConvolutions(true);
    setPointwiseConvolutions(false);
    const before = nativeConvCounts()!;
    await compareWithCpu('oneDNN');
    setPointwiseConvolutions(true);
    const calls = nativeConvCounts()!;
    // the [2, 1]-stride valid case skips its last input row: oneDNN declines it, im2col takes it
    assert.ok(
      calls.onednn - before.onednn >= 6 * (CASES.length - 1),
      `oneDNN ran ${calls.onednn - before.onednn} times`,
    );
    assert.ok(calls.im2col > before.im2col, 'the case oneDNN declines did not reach im2col');
  });

  it('im2col + OpenBLAS matches cpu', {
    skip: native.available ? false : native.detail,
  }, async () => {
    setOneDnnConvolutions(false);
    setPointwiseConvolutions(false);
    const before = nativeConvCounts()!;
    await compareWithCpu('im2col');
    setPointwiseConvolutions(true);
    const calls = nativeConvCounts()!;
    assert.equal(calls.onednn, before.onednn, 'oneDNN ran although turned off');
    assert.ok(calls.im2col - before.im2col >= 6 * CASES.length);
    if (oneDnnOn) setOneDnnConvolutions(true);
  });

  it('the wasm fallback (no addon) matches cpu', {
    skip: native.available
      ? 'the addon is loaded here; native.test.ts runs this file again with CONTRASTIVE_NATIVE=0'
      : false,
  }, async () => {
    await compareWithCpu('wasm');
  });

  it('oneDNN primitives are cached: a repeated shape adds no memory and gives the same result', {
    skip: oneDnnOn ? false : `native convolutions: ${startPath ?? native.detail}`,
  }, async () => {
    await useBackend('wasm');
    const c = CASES[1];
    const data = convData(c);
    const first = convResults(c, data);
    const rss = process.memoryUsage().rss;
    for (let i = 0; i < 50; i++) convResults(c, data);
    const again = convResults(c, data);
    first.forEach((values, i) => {
      expectClose(again[i], values, { rtol: 0, atol: 0 }, LABELS[i]);
    });
    const grownMiB = (process.memoryUsage().rss - rss) / 2 ** 20;
    assert.ok(grownMiB < 32, `RSS grew by ${grownMiB.toFixed(1)} MiB over 50 repeats`);
  });
});
