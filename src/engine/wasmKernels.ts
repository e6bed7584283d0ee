import * as tf from '@tensorflow/tfjs-core';

type KernelFunc = tf.KernelConfig['kernelFunc'];
type Backend = { disposeData(dataId: object): void };

let patched = false;

/**
 * Makes the `wasm` backend's matrix products take its fast path: the stock wasm BatchMatMul
 * multiplies a transposed operand an order of magnitude slower (2.9 against 25 GFLOP/s measured
 * here), and every matmul gradient has a transposed operand. The patched kernels transpose
 * explicitly with the wasm Transpose kernel first. Idempotent; a no-op where wasm is absent.
 */
export function patchWasmKernels(): void {
  if (patched) return;
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!transpose) return;
  for (const kernelName of ['BatchMatMul', '_FusedMatMul']) {
    const original = tf.getKernel(kernelName, 'wasm');
    if (!original) continue;
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      ...original,
      kernelFunc: transposeFirst(original.kernelFunc, transpose.kernelFunc),
    });
  }
  patched = true;
}

function transposeFirst(matMul: KernelFunc, transpose: KernelFunc): KernelFunc {
  return (args) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return matMul(args);
    const backend = args.backend as unknown as Backend;
    const made: tf.TensorInfo[] = [];
    const materialize = (x: tf.TensorInfo, flag: boolean | undefined) => {
      if (!flag) return x;
      const rank = x.shape.length;
      const perm = [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];
      const t = transpose({ inputs: { x }, backend: args.backend, attrs: { perm } }) as tf.TensorInfo;
      made.push(t);
      return t;
    };
    const inputs = {
      ...args.inputs,
      a: materialize(args.inputs.a!, attrs.transposeA),
      b: materialize(args.inputs.b!, attrs.transposeB),
    };
    try {
      return matMul({ ...args, inputs, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
    } finally {
      for (const t of made) backend.disposeData(t.dataId);
    }
  };
}
