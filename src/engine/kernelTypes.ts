import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../errors.js';
import type { NativeEngine } from './native.js';

/** A tfjs kernel function. */
export type KernelFunc = tf.KernelConfig['kernelFunc'];

/**
 * One family of kernels (matrix products, convolutions, …): its kernels on `wasm` — the native
 * form when the addon is loaded, each holding its fallback for what it does not cover — and the
 * path they take, which `doctor` and the run banner print.
 */
export interface KernelFamily {
  /** What `doctor` calls the family. */
  readonly name: string;
  /** The family's kernel configs for `wasm`; native forms when `engine` is given. */
  wasmKernels(engine: NativeEngine | null): tf.KernelConfig[];
  /** The path the family's kernels take on `wasm`. */
  wasmPath(engine: NativeEngine | null): string;
}

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

/**
 * The kernel tfjs-backend-wasm itself registered under `name`. Only valid while the engine builds
 * its kernel list, before it registers its own kernels in their place.
 */
export function stockWasmKernel(name: string): tf.KernelConfig {
  const config = tf.getKernel(name, 'wasm');
  if (!config) {
    throw new ContrastiveError(
      `engine: tfjs-backend-wasm has no ${name} kernel; a version of @tensorflow/tfjs-backend-wasm with it (4.x) is required.`,
    );
  }
  return config;
}

/** Runs a (stock) wasm kernel on tensor infos: kernels cannot call tfjs ops. */
export function runWasmKernel(
  kernel: tf.KernelConfig,
  backend: unknown,
  inputs: tf.NamedTensorInfoMap,
  attrs: object,
): tf.TensorInfo {
  return kernel.kernelFunc({
    inputs,
    backend: backend as tf.KernelBackend,
    attrs: attrs as tf.NamedAttrMap,
  }) as tf.TensorInfo;
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
