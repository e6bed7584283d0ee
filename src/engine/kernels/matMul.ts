import * as tf from '@tensorflow/tfjs-core';
import {
  heapFloats,
  type KernelFamily,
  type KernelFunc,
  runWasmKernel,
  stockWasmKernel,
  type WasmBackend,
} from '../kernelTypes.js';
import type { NativeEngine } from '../native.js';

/**
 * Matrix products (`BatchMatMul`, `_FusedMatMul`) on wasm.
 *
 * Native: oneDNN's sgemm where the addon has oneDNN, else OpenBLAS (the addon's `gemmPath`), on
 * the wasm heap in place (zero-copy: views are re-made on every call, the heap
 * moves when it grows), with `_FusedMatMul`'s per-column bias and linear/ReLU activation applied
 * after the GEMM. Other forms (PReLU, other activations, other bias shapes, non-float32) take the
 * fallback.
 *
 * Fallback: the stock wasm kernel, with transposed operands transposed explicitly first: the stock
 * kernel multiplies a transposed operand an order of magnitude slower (2.9 against 25 GFLOP/s
 * measured here), and every matmul gradient has one.
 */
export const matMulFamily: KernelFamily = {
  name: 'matrix products',
  wasmKernels(engine) {
    const transpose = stockWasmKernel('Transpose');
    return ['BatchMatMul', '_FusedMatMul'].map((kernelName) => {
      const fallback = transposeFirst(stockWasmKernel(kernelName), transpose);
      return {
        kernelName,
        backendName: 'wasm',
        kernelFunc: engine ? nativeMatMul(engine, fallback) : fallback,
      };
    });
  },
  wasmPath(engine) {
    return engine
      ? `native ${engine.gemmPath()}, ${engine.gemmPath() === 'OpenBLAS' ? engine.threads() : engine.parallelThreads()} threads`
      : 'wasm (transposed operands made explicit first)';
  },
};

function nativeMatMul(engine: NativeEngine, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = args.attrs as { transposeA: boolean; transposeB: boolean; activation?: string };
    const activation = attrs.activation ?? 'linear';
    if (
      !a ||
      !b ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      preluActivationWeights ||
      (activation !== 'linear' && activation !== 'relu')
    ) {
      return fallback(args);
    }
    const backend = args.backend as unknown as WasmBackend;
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = attrs.transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = attrs.transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = attrs.transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const batchA = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    const batchB = b.shape.slice(0, -2).reduce((x, y) => x * y, 1);
    if (batchA !== batchB && batchA !== 1 && batchB !== 1) return fallback(args);
    // only a per-column bias ([n]) is fused here; anything else goes to the fallback
    if (bias && bias.shape.reduce((x, y) => x * y, 1) !== n) return fallback(args);
    const batch = Math.max(batchA, batchB);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const out = backend.makeOutput([...outer, m, n], 'float32');
    const c = heapFloats(backend, out);
    engine.sgemm(
      attrs.transposeA,
      attrs.transposeB,
      batch,
      m,
      n,
      k,
      heapFloats(backend, a),
      batchA === 1 ? 0 : m * k,
      heapFloats(backend, b),
      batchB === 1 ? 0 : k * n,
      c,
    );
    if (bias || activation === 'relu')
      engine.biasRelu(c, batch * m, n, bias ? heapFloats(backend, bias) : null, activation === 'relu');
    return out;
  };
}

function transposeFirst(matMul: tf.KernelConfig, transpose: tf.KernelConfig): KernelFunc {
  return (args) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return matMul.kernelFunc(args);
    const backend = args.backend as unknown as WasmBackend;
    const made: tf.TensorInfo[] = [];
    const materialize = (x: tf.TensorInfo, flag: boolean | undefined) => {
      if (!flag) return x;
      const rank = x.shape.length;
      const perm = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
      const t = runWasmKernel(transpose, args.backend, { x }, { perm });
      made.push(t);
      return t;
    };
    const inputs = {
      ...args.inputs,
      a: materialize(args.inputs.a!, attrs.transposeA),
      b: materialize(args.inputs.b!, attrs.transposeB),
    };
    try {
      return matMul.kernelFunc({
        ...args,
        inputs,
        attrs: { ...args.attrs, transposeA: false, transposeB: false },
      });
    } finally {
      for (const t of made) backend.disposeData(t.dataId);
    }
  };
}
