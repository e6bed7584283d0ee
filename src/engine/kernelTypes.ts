import type * as tf from '@tensorflow/tfjs-core';

/** A tfjs kernel function. */
export type KernelFunc = tf.KernelConfig['kernelFunc'];

/** The parts of tfjs-backend-wasm's `BackendWasm` our kernels use. */
export interface WasmBackend {
  disposeData(dataId: object): void;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  wasm: { HEAPU8: Uint8Array };
}

/**
 * A zero-copy Float32Array over a tensor's data on the wasm heap. Make views only after the
 * kernel's last allocation: allocating may grow (move) the heap.
 */
export function heapFloats(backend: WasmBackend, t: tf.TensorInfo): Float32Array {
  return new Float32Array(
    backend.wasm.HEAPU8.buffer,
    backend.dataIdMap.get(t.dataId).memoryOffset,
    t.shape.reduce((a, b) => a * b, 1),
  );
}

/** Attributes of the Conv2D family of kernels (forward, fused, both gradients). */
export interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
  /** Conv2DBackpropFilter. */
  filterShape?: [number, number, number, number];
  /** Conv2DBackpropInput. */
  inputShape?: [number, number, number, number];
}
