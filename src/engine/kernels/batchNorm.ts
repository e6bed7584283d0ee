import * as tf from '@tensorflow/tfjs-core';
import {
  heapFloats,
  type KernelFamily,
  type KernelFunc,
  stockWasmKernel,
  type WasmBackend,
} from '../kernelTypes.js';
import type { NativeEngine } from '../native.js';

/**
 * Training-mode batch norm as two kernels, forward (`y`, batch mean, biased batch variance) and
 * gradient (`dx`, `dγ`, `dβ`), over `x [rows, C]`. The composed tfjs form (moments, then
 * `batchNorm`, then autodiff through all of it) keeps about a dozen `x`-sized intermediates per
 * layer alive until the step ends: 2.7 GB for a small CNN on 256 images. These keep none.
 */
export const BATCH_NORM = 'ContrastiveBatchNorm';
export const BATCH_NORM_GRAD = 'ContrastiveBatchNormGrad';

/** The native kernels' contracts, which the JavaScript forms below share. */
type ForwardImpl = NativeEngine['batchNorm'];
type GradImpl = NativeEngine['batchNormGrad'];

/**
 * Batch norm on wasm. Training mode, native: one call each for the forward and the gradient
 * (float64 sums, two passes); fallback: the same loops in JavaScript over the wasm heap.
 * Inference mode (tfjs's own `FusedBatchNorm`, the statistics given, as a frozen pretrained CNN
 * runs it), native: one multi-threaded pass, `y = (x - mean) · a + offset` with
 * `a = scale / sqrt(variance + ε)` per channel, where tfjs-wasm's stock kernel (one thread, a
 * square root and four index remainders per element) took 1.07 s of a 1.5 s MobileNetV2 batch;
 * fallback (other parameter shapes, no addon): the stock kernel.
 */
export const batchNormFamily: KernelFamily = {
  name: 'batch norm',
  wasmKernels(engine) {
    const training = kernels(
      'wasm',
      engine ? engine.batchNorm : forwardJs,
      engine ? engine.batchNormGrad : gradJs,
    );
    if (!engine) return training;
    const inference: tf.KernelConfig = {
      kernelName: 'FusedBatchNorm',
      backendName: 'wasm',
      kernelFunc: nativeFusedBatchNorm(engine, stockWasmKernel('FusedBatchNorm').kernelFunc),
    };
    return [...training, inference];
  },
  wasmPath(engine) {
    return engine ? 'native (training and inference)' : 'JavaScript loops on the wasm heap; inference: wasm';
  },
};

/**
 * tfjs's `FusedBatchNorm` on wasm, natively: x is float32 and each parameter holds one value per
 * channel (the last axis) or a single value, which is what `tf.batchNorm` and tfjs-layers pass.
 * Otherwise (tfjs indexes a parameter of any other length by the flat index modulo its length)
 * the stock kernel.
 */
function nativeFusedBatchNorm(engine: NativeEngine, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    if (!x || !mean || !variance) return fallback(args);
    const size = x.shape.reduce((a, b) => a * b, 1);
    const cols = x.shape.length > 0 ? x.shape[x.shape.length - 1] : 1;
    const params = [mean, variance, offset, scale].filter((t): t is tf.TensorInfo => t != null);
    const length = (t: tf.TensorInfo) => t.shape.reduce((a, b) => a * b, 1);
    if (
      size === 0 ||
      x.dtype !== 'float32' ||
      params.some((t) => t.dtype !== 'float32' || (length(t) !== cols && length(t) !== 1))
    )
      return fallback(args);
    const { varianceEpsilon } = args.attrs as unknown as { varianceEpsilon: number };
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput([...x.shape], 'float32');
    // views only after the allocation; a single value becomes one per channel
    const read = (t: tf.TensorInfo | undefined) => {
      if (!t) return null;
      const values = heapFloats(backend, t);
      return values.length === cols ? values : new Float32Array(cols).fill(values[0]);
    };
    engine.batchNormInference(
      heapFloats(backend, x),
      size / cols,
      cols,
      read(mean)!,
      read(variance)!,
      read(offset),
      read(scale),
      varianceEpsilon,
      heapFloats(backend, out),
    );
    return out;
  };
}

/** Batch norm on cpu: the JavaScript loops. */
export function batchNormCpuKernels(): tf.KernelConfig[] {
  return kernels('cpu', forwardJs, gradJs);
}

/**
 * The gradient of tfjs's own `FusedBatchNorm` (`tf.batchNorm`, inference-style statistics given)
 * without `tile`: the stock one tiles `1/sqrt(var + ε)` to the full `[N, H, W, C]` shape before
 * multiplying (2 s of a 8 s CNN step on wasm); broadcasting does the same arithmetic without the
 * copy. Same formulas, same inputs saved. Every backend.
 */
export const fusedBatchNormGradient: tf.GradConfig = {
  kernelName: 'FusedBatchNorm',
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy, saved, attrs) => {
    const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
    const [x, mean, variance, scale] = saved;
    const dyT = dy as tf.Tensor;
    const scaleValue = scale ?? tf.scalar(1);
    const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
    const reduce = (t: tf.Tensor) => tf.reshape(mean.rank === 1 ? tf.sum(t, axes) : t, mean.shape);
    const rsqrt = tf.rsqrt(tf.add(variance, varianceEpsilon));
    const dyScaled = tf.mul(dyT, scaleValue);
    return {
      x: () => tf.mul(dyScaled, rsqrt),
      mean: () => reduce(tf.neg(tf.mul(dyScaled, rsqrt))),
      variance: () => reduce(tf.mul(tf.mul(tf.sub(x, mean), dyScaled), tf.mul(tf.pow(rsqrt, 3), -0.5))),
      scale: () => reduce(tf.mul(dyT, tf.mul(tf.sub(x, mean), rsqrt))),
      offset: () => reduce(dyT),
    };
  },
};

/** The JavaScript form of the native kernel (float64 accumulation, two passes). */
const forwardJs: ForwardImpl = (x, rows, cols, gamma, beta, eps, y, mean, variance) => {
  const mu = new Float64Array(cols);
  const sq = new Float64Array(cols);
  for (let r = 0, o = 0; r < rows; r++) for (let c = 0; c < cols; c++, o++) mu[c] += x[o];
  for (let c = 0; c < cols; c++) mu[c] /= rows;
  for (let r = 0, o = 0; r < rows; r++)
    for (let c = 0; c < cols; c++, o++) {
      const d = x[o] - mu[c];
      sq[c] += d * d;
    }
  for (let c = 0; c < cols; c++) {
    mean[c] = mu[c];
    variance[c] = sq[c] / rows;
    sq[c] = gamma[c] / Math.sqrt(sq[c] / rows + eps);
  }
  for (let r = 0, o = 0; r < rows; r++)
    for (let c = 0; c < cols; c++, o++) y[o] = (x[o] - mu[c]) * sq[c] + beta[c];
};

const gradJs: GradImpl = (x, dy, mean, variance, gamma, rows, cols, eps, dx, dgamma, dbeta) => {
  const s = new Float64Array(cols);
  const sb = new Float64Array(cols);
  const sg = new Float64Array(cols);
  for (let c = 0; c < cols; c++) s[c] = 1 / Math.sqrt(variance[c] + eps);
  for (let r = 0, o = 0; r < rows; r++)
    for (let c = 0; c < cols; c++, o++) {
      sb[c] += dy[o];
      sg[c] += dy[o] * (x[o] - mean[c]);
    }
  for (let c = 0; c < cols; c++) {
    sg[c] *= s[c];
    dbeta[c] = sb[c];
    dgamma[c] = sg[c];
  }
  for (let r = 0, o = 0; r < rows; r++)
    for (let c = 0; c < cols; c++, o++) {
      const xhat = (x[o] - mean[c]) * s[c];
      dx[o] = gamma[c] * s[c] * (dy[o] - sb[c] / rows - (xhat * sg[c]) / rows);
    }
};

interface CpuBackend {
  data: { get(dataId: object): { values: Float32Array } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

/** Reads inputs and makes outputs for one backend, so both kernels are written once. */
interface Storage {
  read(t: tf.TensorInfo): Float32Array;
  outputs(shapes: number[][]): { infos: tf.TensorInfo[]; arrays: Float32Array[] };
}

function storage(backendName: string, backend: unknown): Storage {
  const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  if (backendName === 'wasm') {
    const b = backend as WasmBackend;
    return {
      read: (t) => heapFloats(b, t),
      outputs(shapes) {
        const infos = shapes.map((s) => b.makeOutput(s, 'float32'));
        // views only after every allocation: allocating may grow (move) the heap
        return { infos, arrays: infos.map((t) => heapFloats(b, t)) };
      },
    };
  }
  const b = backend as CpuBackend;
  return {
    read: (t) => b.data.get(t.dataId).values,
    outputs(shapes) {
      const arrays = shapes.map((s) => new Float32Array(size(s)));
      return { infos: shapes.map((s, i) => b.makeTensorInfo(s, 'float32', arrays[i])), arrays };
    },
  };
}

function kernels(backendName: string, forward: ForwardImpl, grad: GradImpl): tf.KernelConfig[] {
  const forwardFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
    const { epsilon } = attrs as unknown as { epsilon: number };
    const [rows, cols] = x.shape;
    const io = storage(backendName, backend);
    const { infos, arrays } = io.outputs([[rows, cols], [cols], [cols]]);
    forward(io.read(x), rows, cols, io.read(gamma), io.read(beta), epsilon, arrays[0], arrays[1], arrays[2]);
    return infos;
  };
  const gradFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, dy, mean, variance, gamma } = inputs as Record<string, tf.TensorInfo>;
    const { epsilon } = attrs as unknown as { epsilon: number };
    const [rows, cols] = x.shape;
    const io = storage(backendName, backend);
    const { infos, arrays } = io.outputs([[rows, cols], [cols], [cols]]);
    grad(
      io.read(x),
      io.read(dy),
      io.read(mean),
      io.read(variance),
      io.read(gamma),
      rows,
      cols,
      epsilon,
      arrays[0],
      arrays[1],
      arrays[2],
    );
    return infos;
  };
  return [
    { kernelName: BATCH_NORM, backendName, kernelFunc: forwardFunc },
    { kernelName: BATCH_NORM_GRAD, backendName, kernelFunc: gradFunc },
  ];
}
