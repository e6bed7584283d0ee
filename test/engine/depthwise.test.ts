/**
 * Every depthwise convolution form (oneDNN's grouped convolution where built with it, the direct C
 * loops, and the wasm fallback: XNNPACK forward, JavaScript gradients) against the cpu backend:
 * forward and both gradients through `tf.grads`, on odd shapes, strides 1 and 2, channel
 * multipliers above 1, same, valid and explicit padding; and the kernels called directly with
 * dilation, checked by their adjoint identities.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { nativeConvPath, setOneDnnConvolutions } from '../../src/engine/kernels/conv.js';
import { depthwiseLoops, nativeDepthwiseCounts } from '../../src/engine/kernels/depthwise.js';
import { nativeStatus } from '../../src/engine/native.js';
import { Rng } from '../../src/random.js';
import { compareCasesWithCpu, expectClose } from '../helpers/backends.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

interface DepthwiseCase {
  x: [number, number, number, number];
  /** [KH, KW, C, channel multiplier] */
  filter: [number, number, number, number];
  strides: number | [number, number];
  pad: Pad;
}

const CASES: DepthwiseCase[] = [
  { x: [3, 7, 9, 5], filter: [3, 3, 5, 1], strides: 1, pad: 'same' },
  { x: [3, 7, 9, 5], filter: [3, 3, 5, 1], strides: 2, pad: 'same' },
  { x: [3, 7, 9, 5], filter: [3, 3, 5, 2], strides: 2, pad: 'same' },
  { x: [3, 7, 9, 5], filter: [3, 3, 5, 3], strides: 2, pad: 'valid' },
  { x: [3, 7, 9, 5], filter: [3, 3, 5, 1], strides: 1, pad: 'valid' },
  { x: [2, 8, 8, 40], filter: [3, 3, 40, 1], strides: 2, pad: 'same' },
  { x: [1, 11, 10, 19], filter: [5, 5, 19, 1], strides: 1, pad: 'same' },
  { x: [2, 6, 7, 4], filter: [2, 3, 4, 2], strides: [2, 1], pad: 'valid' },
  {
    x: [2, 6, 7, 4],
    filter: [3, 3, 4, 1],
    strides: 2,
    pad: [
      [0, 0],
      [1, 0],
      [2, 1],
      [0, 0],
    ],
  },
];

const rng = new Rng(21);
const normal = (shape: number[]) =>
  Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());

interface DepthwiseData {
  x: Float32Array;
  filter: Float32Array;
  /** One weight per output element, so every gradient entry depends on where it came from. */
  weights: Float32Array;
}

const outShape = (c: DepthwiseCase) =>
  tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, undefined, true).outShape;

function depthwiseData(c: DepthwiseCase): DepthwiseData {
  return { x: normal(c.x), filter: normal(c.filter), weights: normal(outShape(c)) };
}

/** The forward and the gradients w.r.t. input and filter of a weighted sum of it, via `tf.grads`. */
function depthwiseResults(c: DepthwiseCase, data: DepthwiseData): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(data.x, c.x);
    const filter = tf.tensor4d(data.filter, c.filter);
    const weights = tf.tensor(data.weights, outShape(c));
    const forward = (a: tf.Tensor, f: tf.Tensor) =>
      tf.depthwiseConv2d(a as tf.Tensor4D, f as tf.Tensor4D, c.strides, c.pad);
    const [gx, gf] = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.sum(tf.mul(forward(a, f), weights)))([
      x,
      filter,
    ]);
    return [forward(x, filter), gx, gf].map((t) => t.dataSync() as Float32Array);
  });
}

const LABELS = ['forward', 'input gradient', 'filter gradient'];

const compareWithCpu = (describePath: string) =>
  compareCasesWithCpu(CASES, depthwiseData, depthwiseResults, LABELS, describePath);

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/**
 * The kernels called directly with dilation 2 (tfjs's gradient refuses dilation, so nothing else
 * reaches them so): the forward matches cpu, and both gradients are its adjoints,
 * `⟨dy, F(x, W)⟩ = ⟨dx(dy, W), x⟩ = ⟨dW(x, dy), W⟩`.
 */
function checkDilated(label: string): void {
  const xShape: [number, number, number, number] = [2, 9, 8, 6];
  const fShape: [number, number, number, number] = [3, 3, 6, 2];
  const attrs = { strides: [1, 1], pad: 'same', dilations: [2, 2], dataFormat: 'NHWC' };
  tf.tidy(() => {
    const x = tf.tensor4d(normal(xShape), xShape);
    const f = tf.tensor4d(normal(fShape), fShape);
    const y = tf.depthwiseConv2d(x, f, 1, 'same', 'NHWC', 2);
    const dy = tf.tensor(normal(y.shape), y.shape);
    const dx = tf.engine().runKernel(
      'DepthwiseConv2dNativeBackpropInput',
      { dy, filter: f },
      {
        ...attrs,
        inputShape: xShape,
      },
    ) as tf.Tensor;
    const df = tf.engine().runKernel(
      'DepthwiseConv2dNativeBackpropFilter',
      { x, dy },
      {
        ...attrs,
        filterShape: fShape,
      },
    ) as tf.Tensor;
    const reference = dot(dy.dataSync(), y.dataSync());
    const scale = Math.abs(reference) + 1;
    assert.ok(Math.abs(dot(dx.dataSync(), x.dataSync()) - reference) < 1e-4 * scale, `${label} dx adjoint`);
    assert.ok(Math.abs(dot(df.dataSync(), f.dataSync()) - reference) < 1e-4 * scale, `${label} dW adjoint`);
  });
}

const native = nativeStatus();
const oneDnnOn = nativeConvPath()?.startsWith('oneDNN') ?? false;

describe('depthwise convolutions against cpu', () => {
  after(() => {
    if (oneDnnOn) setOneDnnConvolutions(true);
  });

  it('oneDNN grouped convolutions (forward, input gradient; direct loops for the filter gradient) match cpu', {
    skip: oneDnnOn ? false : `native convolutions: ${nativeConvPath() ?? native.detail}`,
  }, async () => {
    setOneDnnConvolutions(true);
    const before = nativeDepthwiseCounts()!;
    await compareWithCpu('oneDNN');
    checkDilated('oneDNN');
    const calls = nativeDepthwiseCounts()!;
    // the forward and the input gradient; the filter gradient is always the direct loops
    assert.ok(calls.onednn - before.onednn >= 2 * 6, `oneDNN ran ${calls.onednn - before.onednn} times`);
    // so do the valid windows that skip the last rows and the dilated calls
    assert.ok(calls.direct > before.direct, 'the shapes oneDNN declines did not reach the direct loops');
  });

  it('the direct loops match cpu', { skip: native.available ? false : native.detail }, async () => {
    setOneDnnConvolutions(false);
    const before = nativeDepthwiseCounts()!;
    await compareWithCpu('direct');
    checkDilated('direct');
    const calls = nativeDepthwiseCounts()!;
    assert.equal(calls.onednn, before.onednn, 'oneDNN ran although turned off');
    assert.ok(calls.direct - before.direct >= 3 * CASES.length);
    if (oneDnnOn) setOneDnnConvolutions(true);
  });

  it('the wasm fallback (no addon: XNNPACK forward, JavaScript gradients) matches cpu', {
    skip: native.available
      ? 'the addon is loaded here; native.test.ts runs this file again with CONTRASTIVE_NATIVE=0'
      : false,
  }, async () => {
    await compareWithCpu('wasm');
    checkDilated('wasm');
  });

  it('the JavaScript loops compute the forward too (any backend, no addon needed)', async () => {
    await useBackend('cpu');
    for (const c of CASES.slice(2, 4)) {
      const data = depthwiseData(c);
      const expected = depthwiseResults(c, data)[0];
      const info = tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, 1, c.pad, undefined, true);
      const out = new Float32Array(expected.length);
      const [n, h, w, ch] = c.x;
      const [kh, kw, , m] = c.filter;
      depthwiseLoops(
        ...[n, h, w, ch, m, info.outHeight, info.outWidth, kh, kw, info.strideHeight, info.strideWidth],
        ...[info.padInfo.top, info.padInfo.left, 1, 1, 0],
        data.x,
        data.filter,
        out,
      );
      expectClose(out, expected, { rtol: 1e-5, atol: 1e-5 }, `loops forward ${JSON.stringify(c)}`);
    }
  });

  it('repeated calls reuse their buffers: no memory growth, the same result', {
    skip: native.available ? false : native.detail,
  }, async () => {
    await useBackend('wasm');
    const c = CASES[5];
    const data = depthwiseData(c);
    const first = depthwiseResults(c, data);
    const rss = process.memoryUsage().rss;
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) depthwiseResults(c, data);
    const again = depthwiseResults(c, data);
    first.forEach((values, i) => {
      expectClose(again[i], values, { rtol: 0, atol: 0 }, LABELS[i]);
    });
    assert.equal(tf.memory().numTensors, tensors);
    const grownMiB = (process.memoryUsage().rss - rss) / 2 ** 20;
    assert.ok(grownMiB < 32, `RSS grew by ${grownMiB.toFixed(1)} MiB over 50 repeats`);
  });
});
