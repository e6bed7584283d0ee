/** The native BLAS matrix products (when built) agree with cpu; without the addon everything falls back. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { setConvScratchLimit } from '../../src/engine/kernels/conv.js';
import { loadNative, nativeStatus } from '../../src/engine/native.js';
import { Rng } from '../../src/random.js';
import { expectClose } from '../helpers/backends.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const rng = new Rng(9);
const normal = (shape: number[]) =>
  tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
    shape,
  );

describe('native BLAS engine', () => {
  it('matmuls (batched, broadcast, transposed) and fused bias + ReLU match cpu, through each GEMM library', {
    skip: nativeStatus().available ? false : nativeStatus().detail,
  }, async () => {
    const cases = [
      { a: [3, 4, 5], b: [3, 5, 6], ta: false, tb: false },
      { a: [3, 5, 4], b: [1, 6, 5], ta: true, tb: true },
      { a: [1, 4, 5], b: [2, 5, 6], ta: false, tb: false },
      { a: [7, 3], b: [7, 2], ta: true, tb: false },
    ];
    const engine = loadNative()!;
    // OpenBLAS, and oneDNN's sgemm where built with it (what the engine then uses)
    const engineGemm = engine.gemmPath();
    const gemmPaths = [false, ...(engine.convPath().startsWith('oneDNN') ? [true] : [])];
    await useBackend('cpu');
    for (const oneDnnGemm of gemmPaths) {
      engine.setGemmPath(oneDnnGemm);
      for (const c of cases) {
        const [a, b, bias] = [
          normal(c.a),
          normal(c.b),
          normal([c.tb ? c.b[c.b.length - 2] : c.b[c.b.length - 1]]),
        ];
        const compute = () =>
          tf.tidy(() => [
            tf.matMul(a, b, c.ta, c.tb).dataSync(),
            tf.fused
              .matMul({ a, b, transposeA: c.ta, transposeB: c.tb, bias, activation: 'relu' })
              .dataSync(),
          ]);
        await useBackend('cpu');
        const expected = compute();
        await useBackend('wasm');
        const actual = compute();
        const label = `${engine.gemmPath()} ${JSON.stringify(c)}`;
        expectClose(actual[0], expected[0], { rtol: 1e-5, atol: 1e-5 }, `matMul ${label}`);
        expectClose(actual[1], expected[1], { rtol: 1e-5, atol: 1e-5 }, `fused ${label}`);
        tf.dispose([a, b, bias]);
      }
    }
    engine.setGemmPath(engineGemm !== 'OpenBLAS');
  });

  it('convolutions (forward fused with bias + ReLU, both gradients) and leading-axis Sum/Mean match cpu', {
    skip: nativeStatus().available ? false : nativeStatus().detail,
  }, async () => {
    await useBackend('cpu');
    const [x, f, bias] = [normal([2, 9, 9, 3]), normal([3, 3, 3, 5]), normal([5])];
    const compute = () =>
      tf.tidy(() => {
        const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.square(
              tf.fused.conv2d({
                x: a as tf.Tensor4D,
                filter: b as tf.Tensor4D,
                strides: 2,
                pad: 'same',
                bias,
                activation: 'relu',
              }),
            ),
          ),
        )([x, f]);
        return [
          gx.dataSync(),
          gf.dataSync(),
          tf.sum(x, [0, 1, 2]).dataSync(),
          tf.mean(x, [0, 1, 2], true).dataSync(),
        ];
      });
    const expected = compute();
    await useBackend('wasm');
    const actual = compute();
    ['input gradient', 'filter gradient', 'sum', 'mean'].forEach((label, i) => {
      expectClose(actual[i], expected[i], { rtol: 1e-4, atol: 1e-4 }, label);
    });
    tf.dispose([x, f, bias]);
  });

  it('convolutions over more images than fit in one im2col buffer match cpu', {
    skip: nativeStatus().available ? false : nativeStatus().detail,
  }, async () => {
    // 9·9·(3·3·6) = 4,374 floats of columns per image: 3 images per 16,000-float buffer, so 7 take 3 + 3 + 1
    const compute = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.square(tf.conv2d(xv as tf.Tensor4D, fv as tf.Tensor4D, 1, 'same'))) as tf.Scalar,
          [xv, fv],
        );
        return [value.dataSync(), grads[xv.name].dataSync(), grads[fv.name].dataSync()];
      });
    await useBackend('cpu');
    const [x, f] = [normal([7, 9, 9, 6]), normal([3, 3, 6, 4])];
    const xv = tf.variable(x);
    const fv = tf.variable(f);
    const expected = compute();
    await useBackend('wasm');
    setConvScratchLimit(16_000 * 4);
    const actual = compute();
    setConvScratchLimit(64 * 2 ** 20);
    ['output', 'input gradient', 'filter gradient'].forEach((label, i) => {
      expectClose(actual[i], expected[i], { rtol: 1e-4, atol: 1e-4 }, label);
    });
    tf.dispose([x, f, xv, fv]);
  });

  it('the fused log-sum-exp walks tiles: same loss and gradient as cpu, no [M, M] tensor', {
    skip: nativeStatus().available ? false : nativeStatus().detail,
  }, async () => {
    const { supConLoss } = await import('../../src/losses/supCon.js');
    const n = 700; // 1,400 rows: more than one tile of rows and of columns
    const data = normal([n, 2, 16]).dataSync();
    const labels = Array.from({ length: n }, (_, i) => i % 37);
    const run = () =>
      tf.tidy(() => {
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) =>
          supConLoss(x, labels, { temperature: 0.1 }),
        )(tf.tensor(data, [n, 2, 16]));
        return [value.dataSync(), grad.dataSync()];
      });
    await useBackend('cpu');
    const expected = run();
    await useBackend('wasm');
    const profile = await tf.profile(() => {
      run();
    });
    assert.ok(
      profile.kernels.some((k) => k.name === 'ContrastiveFusedLse'),
      'the fused kernel was not used',
    );
    assert.ok(
      profile.kernels.every((k) =>
        k.outputShapes.every((s) => (s as number[]).reduce((a, b) => a * b, 1) < (2 * n) ** 2 / 4),
      ),
    );
    const actual = run();
    expectClose(actual[0], expected[0], { rtol: 1e-5 }, 'loss');
    const scale = Math.max(0.1, ...Array.from(expected[1], Math.abs));
    expectClose(actual[1], expected[1], { rtol: 0, atol: 1e-5 * scale }, 'gradient');
  });

  it('without the addon (CONTRASTIVE_NATIVE=0) the engine says why, and the exact losses and kernel tests still pass on wasm', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, CONTRASTIVE_NATIVE: '0', TEST_BACKENDS: 'wasm' };
    delete env.NODE_TEST_CONTEXT; // the child is a test run of its own, reporting to its own stdout
    const doctor = spawnSync(process.execPath, [resolve(REPO_ROOT, 'dist/src/cli/bin.js'), 'doctor'], {
      env,
      encoding: 'utf8',
    });
    assert.equal(doctor.status, 0, doctor.stderr);
    assert.match(doctor.stdout, /ok\s+wasm .*native engine: none \(disabled by CONTRASTIVE_NATIVE=0\)/);
    assert.match(doctor.stdout, /matrix products:\s+wasm \(transposed operands made explicit first\)/);
    assert.match(doctor.stdout, /convolutions:\s+wasm XNNPACK Conv2D/);
    assert.match(
      doctor.stdout,
      /depthwise convolutions:\s+wasm XNNPACK forward; gradients in JavaScript loops/,
    );
    // the golden losses, and every kernel test, on the fallbacks
    const files = [
      'losses/goldens.test.js',
      ...[
        'conv',
        'depthwise',
        'batchNorm',
        'elementwise',
        'gather',
        'segmentSum',
        'wasmKernels',
        'optimizer',
      ].map((f) => `engine/${f}.test.js`),
    ];
    const fallbacks = spawnSync(
      process.execPath,
      ['--test', ...files.map((f) => resolve(REPO_ROOT, 'dist/test', f))],
      { env, encoding: 'utf8' },
    );
    assert.equal(fallbacks.status, 0, fallbacks.stdout.slice(-2000));
    assert.match(fallbacks.stdout, /# fail 0/);
    // the wasm fallback's convolution tests ran rather than skipped
    assert.match(fallbacks.stdout, /ok \d+ - the wasm fallback \(no addon\) matches cpu\n/);
    assert.match(
      fallbacks.stdout,
      /ok \d+ - the wasm fallback \(no addon: XNNPACK forward, JavaScript gradients\) matches cpu\n/,
    );
  });
});
