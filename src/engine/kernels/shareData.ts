import type * as tf from '@tensorflow/tfjs-core';
import { type KernelFamily, stockWasmKernel } from '../kernelTypes.js';

/**
 * `Identity` (and a `Cast` to the same dtype) on wasm return the input's data with one more
 * reference, as `Reshape` and the cpu backend already do, instead of copying it. Autodiff clones
 * every tensor it saves for the backward pass: on stock wasm each clone was a full copy, 0.9 of
 * the 1.6 GB a small-CNN step on 256 images held. Anything else (strings, a real cast) takes the
 * stock kernel. No native form: there is nothing to compute.
 */
export const shareDataFamily: KernelFamily = {
  name: 'identity and same-dtype cast',
  wasmKernels() {
    return [
      shareInsteadOfCopy('Identity', () => true),
      shareInsteadOfCopy('Cast', (x, attrs) => (attrs as { dtype?: string }).dtype === x.dtype),
    ];
  },
  wasmPath() {
    return 'shared data (no copy)';
  },
};

function shareInsteadOfCopy(
  kernelName: string,
  applies: (x: tf.TensorInfo, attrs: unknown) => boolean,
): tf.KernelConfig {
  const stock = stockWasmKernel(kernelName);
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = (args.inputs as { x: tf.TensorInfo }).x;
      if (x.dtype === 'string' || !applies(x, args.attrs)) return stock.kernelFunc(args);
      (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  };
}
