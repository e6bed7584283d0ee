import type * as tf from '@tensorflow/tfjs-core';
import {
  heapFloats,
  type KernelFamily,
  type KernelFunc,
  stockWasmKernel,
  type WasmBackend,
} from '../kernelTypes.js';
import type { NativeEngine } from '../native.js';

/** The native op code of each binary kernel (native/elementwise.c). */
const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2 } as const;

/**
 * Element-wise kernels a CNN step spends most of its non-convolution time in (residual adds, the
 * ReLU gradient's `Step` and `Multiply`, `Relu`; Keras models' ReLU6 `ClipByValue` and the
 * `ZeroPadding2D` before each stride-2 depthwise convolution, `PadV2`: a fifth of MobileNetV2's
 * forward on the stock kernel) on wasm. Native: float32 and, for binary ops,
 * two inputs of one shape, over the cores for large tensors; each element is one IEEE operation,
 * so results equal the stock kernels'. Fallback (broadcasting, other dtypes, no addon): the stock
 * single-threaded wasm kernels.
 */
export const elementwiseFamily: KernelFamily = {
  name: 'element-wise (add, sub, mul, relu, step, clip, pad)',
  wasmKernels(engine) {
    if (!engine) return [];
    return [
      ...(Object.keys(BINARY_OPS) as (keyof typeof BINARY_OPS)[]).map((kernelName) => ({
        kernelName,
        backendName: 'wasm',
        kernelFunc: nativeBinary(engine, BINARY_OPS[kernelName], stockWasmKernel(kernelName).kernelFunc),
      })),
      {
        kernelName: 'Relu',
        backendName: 'wasm',
        kernelFunc: nativeUnary(engine, false, stockWasmKernel('Relu').kernelFunc),
      },
      {
        kernelName: 'Step',
        backendName: 'wasm',
        kernelFunc: nativeUnary(engine, true, stockWasmKernel('Step').kernelFunc),
      },
      ...(engine.clip && engine.pad
        ? [
            {
              kernelName: 'ClipByValue',
              backendName: 'wasm',
              kernelFunc: nativeClip(engine, stockWasmKernel('ClipByValue').kernelFunc),
            },
            {
              kernelName: 'PadV2',
              backendName: 'wasm',
              kernelFunc: nativePad(engine, stockWasmKernel('PadV2').kernelFunc),
            },
          ]
        : []),
    ];
  },
  wasmPath(engine) {
    return engine ? 'native, multi-threaded (same-shape float32; else wasm)' : 'wasm (single-threaded)';
  },
};

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function nativeBinary(engine: NativeEngine, op: number, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || !sameShape(a.shape, b.shape) || a.shape.includes(0))
      return fallback(args);
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput([...a.shape], 'float32');
    engine.binary(op, heapFloats(backend, a), heapFloats(backend, b), heapFloats(backend, out));
    return out;
  };
}

function nativeUnary(engine: NativeEngine, step: boolean, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32' || x.shape.includes(0)) return fallback(args);
    const alpha = step ? ((args.attrs as { alpha?: number }).alpha ?? 0) : 0;
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput([...x.shape], 'float32');
    engine.unary(step, alpha, heapFloats(backend, x), heapFloats(backend, out));
    return out;
  };
}

function nativeClip(engine: NativeEngine, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { clipValueMin, clipValueMax } = args.attrs as { clipValueMin: number; clipValueMax: number };
    if (x.dtype !== 'float32' || x.shape.includes(0) || !engine.clip) return fallback(args);
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput([...x.shape], 'float32');
    engine.clip(clipValueMin, clipValueMax, heapFloats(backend, x), heapFloats(backend, out));
    return out;
  };
}

function nativePad(engine: NativeEngine, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { paddings, constantValue } = args.attrs as {
      paddings: [number, number][];
      constantValue: number;
    };
    const rank = x.shape.length;
    if (x.dtype !== 'float32' || rank === 0 || rank > 4 || x.shape.includes(0) || !engine.pad)
      return fallback(args);
    // leading axes of 1 up to rank 4
    const lead = 4 - rank;
    const dims = [...Array(lead).fill(1), ...x.shape];
    const before = [...Array(lead).fill(0), ...paddings.map((p) => p[0])];
    const after = [...Array(lead).fill(0), ...paddings.map((p) => p[1])];
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(
      x.shape.map((d, i) => d + paddings[i][0] + paddings[i][1]),
      'float32',
    );
    engine.pad(
      heapFloats(backend, x),
      ...(dims as [number, number, number, number]),
      ...(before as [number, number, number, number]),
      ...(after as [number, number, number, number]),
      constantValue,
      heapFloats(backend, out),
    );
    return out;
  };
}
