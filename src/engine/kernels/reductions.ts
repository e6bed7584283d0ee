import type * as tf from '@tensorflow/tfjs-core';
import {
  heapFloats,
  type KernelFamily,
  type KernelFunc,
  stockWasmKernel,
  type WasmBackend,
} from '../kernelTypes.js';
import type { NativeEngine } from '../native.js';

/**
 * `Sum` and `Mean` over every axis but the last (what batch norm reduces, and its gradients) on
 * wasm. Native: one pass over the rows, accumulated in float64, where the stock kernels transpose
 * the whole tensor first. Fallback (other axes, other dtypes, no addon): the stock kernels.
 */
export const leadingAxisSumFamily: KernelFamily = {
  name: 'sums over leading axes',
  wasmKernels(engine) {
    if (!engine) return [];
    return (['Sum', 'Mean'] as const).map((kernelName) => ({
      kernelName,
      backendName: 'wasm',
      kernelFunc: nativeLeadingAxisSum(engine, kernelName, stockWasmKernel(kernelName).kernelFunc),
    }));
  },
  wasmPath(engine) {
    return engine ? 'native (float64 column sums)' : 'wasm (transpose, then reduce)';
  },
};

function nativeLeadingAxisSum(engine: NativeEngine, name: 'Sum' | 'Mean', fallback: KernelFunc): KernelFunc {
  return (args) => {
    const x = (args.inputs as { x: tf.TensorInfo }).x;
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const rank = x.shape.length;
    const axes = (Array.isArray(axis) ? axis : [axis])
      .map((a) => (a < 0 ? a + rank : a))
      .sort((a, b) => a - b);
    const leading = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32') return fallback(args);
    const cols = x.shape[rank - 1];
    const rows = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(keepDims ? [...new Array(rank - 1).fill(1), cols] : [cols], 'float32');
    engine.colSum(
      heapFloats(backend, x),
      rows,
      cols,
      heapFloats(backend, out),
      name === 'Mean' ? 1 / rows : 1,
    );
    return out;
  };
}
