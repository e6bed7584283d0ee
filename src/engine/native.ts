import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { type ConvAttrs, heapFloats, type KernelFunc, type WasmBackend } from './kernelTypes.js';

/** The native addon's functions (native/blas.c). */
export interface NativeBlas {
  sgemm(
    transposeA: boolean,
    transposeB: boolean,
    batch: number,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    aBatchStride: number,
    b: Float32Array,
    bBatchStride: number,
    out: Float32Array,
  ): void;
  biasRelu(out: Float32Array, rows: number, cols: number, bias: Float32Array | null, relu: boolean): void;
  /**
   * 13 shape numbers (n, h, w, cin, oh, ow, cout, kh, kw, sh, sw, padTop, padLeft), a mode, two
   * inputs, the output, and the im2col buffer's size limit in floats.
   */
  conv(...args: [...number[], Float32Array, Float32Array, Float32Array, number]): void;
  /** `out[i] = log Σ_{j≠i} exp(invTau · f_i·f_j)` for `F [m, d]`, tiled (memory O(tile)). */
  fusedLse(f: Float32Array, m: number, d: number, invTau: number, out: Float32Array): void;
  /** The gradient of `Σ_i dy_i lse_i` w.r.t. F, tiled. */
  fusedLseGrad(
    f: Float32Array,
    lse: Float32Array,
    dy: Float32Array,
    m: number,
    d: number,
    invTau: number,
    out: Float32Array,
  ): void;
  /** `out[g, :] = Σ_{i: ids[i] = g} x[i, :]`. */
  segmentSum(
    x: Float32Array,
    ids: Int32Array,
    n: number,
    d: number,
    numSegments: number,
    out: Float32Array,
  ): void;
  /** `out[c] = scale · Σ_r x[r, c]`, accumulated in float64. */
  colSum(x: Float32Array, rows: number, cols: number, out: Float32Array, scale: number): void;
  /** Training-mode batch norm over the rows of `x [rows, cols]`: `y`, batch mean, biased variance. */
  batchNorm(
    x: Float32Array,
    rows: number,
    cols: number,
    gamma: Float32Array,
    beta: Float32Array,
    eps: number,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
  ): void;
  /** The gradient of `batchNorm` w.r.t. `x`, `gamma` and `beta`. */
  batchNormGrad(
    x: Float32Array,
    dy: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    gamma: Float32Array,
    rows: number,
    cols: number,
    eps: number,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
  ): void;
  config(): string;
  threads(): number;
  /** Threads the fused loss splits its rows among (OpenMP); 0 when built without OpenMP. */
  parallelThreads(): number;
}

/** Whether the native engine is loaded, and why not. */
export interface NativeStatus {
  available: boolean;
  detail: string;
}

let addon: NativeBlas | null | undefined;
let why = '';

/** Loads `native/build/contrastive_native.node` once; null when absent or disabled (`CONTRASTIVE_NATIVE=0`). */
export function loadNative(): NativeBlas | null {
  if (addon !== undefined) return addon;
  if (process.env.CONTRASTIVE_NATIVE === '0') {
    why = 'disabled by CONTRASTIVE_NATIVE=0';
    addon = null;
    return addon;
  }
  try {
    addon = createRequire(import.meta.url)('../../../native/build/contrastive_native.node') as NativeBlas;
  } catch (error) {
    why = `addon not built (${(error as Error).message.split('\n')[0]}); run: node scripts/build-native.mjs`;
    addon = null;
  }
  return addon;
}

/** What `doctor` and the start of each run print about the native engine. */
export function nativeStatus(): NativeStatus {
  const blas = loadNative();
  if (!blas) return { available: false, detail: why };
  const fused = blas.parallelThreads();
  const loss =
    fused === 0 ? 'single-threaded (built without OpenMP)' : `on ${fused} thread${fused === 1 ? '' : 's'}`;
  return {
    available: true,
    detail: `OpenBLAS (${blas.config().trim()}), ${blas.threads()} threads; fused loss ${loss}`,
  };
}

let registered = false;

/**
 * Routes the wasm backend's matrix products to OpenBLAS, reading and writing the wasm heap in
 * place (zero-copy: views are re-made on every call, the heap moves when it grows). `_FusedMatMul`
 * with a bias and a linear or ReLU activation is handled too; other fused forms keep the original
 * kernel. Returns false when the addon is not available.
 */
export function registerNativeMatMul(): boolean {
  const blas = loadNative();
  if (!blas) return false;
  if (registered) return true;
  const original = {
    BatchMatMul: tf.getKernel('BatchMatMul', 'wasm'),
    _FusedMatMul: tf.getKernel('_FusedMatMul', 'wasm'),
  };
  if (!original.BatchMatMul || !original._FusedMatMul) return false;
  const run =
    (fallback: KernelFunc): KernelFunc =>
    (args) => {
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
      // only a per-column bias ([n]) is fused here; anything else goes to the original kernel
      if (bias && bias.shape.reduce((x, y) => x * y, 1) !== n) return fallback(args);
      const batch = Math.max(batchA, batchB);
      const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
      const out = backend.makeOutput([...outer, m, n], 'float32');
      const c = heapFloats(backend, out);
      blas.sgemm(
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
        blas.biasRelu(c, batch * m, n, bias ? heapFloats(backend, bias) : null, activation === 'relu');
      return out;
    };
  for (const [name, config] of Object.entries(original)) {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...config!, kernelFunc: run(config!.kernelFunc) });
  }
  registered = true;
  return true;
}

let convRegistered = false;
let convScratchFloats = 16 * 2 ** 20;

/**
 * Caps the native convolutions' im2col buffer (default 64 MB): the column matrix is built for as
 * many whole images at a time as fit, so a big batch costs no more scratch memory than this (at
 * least one image's columns). Smaller saves memory, larger saves a few GEMM calls.
 */
export function setConvScratchLimit(bytes: number): void {
  convScratchFloats = Math.max(1, Math.floor(bytes / 4));
}

/**
 * Routes the wasm backend's 2-D convolutions (forward, fused with bias and linear/ReLU, and both
 * gradients) to im2col + OpenBLAS in the addon, in place on the wasm heap. NHWC without dilation
 * only; anything else keeps the wasm kernel. Returns false when the addon is not available.
 */
export function registerNativeConv(): boolean {
  const blas = loadNative();
  if (!blas) return false;
  if (convRegistered) return true;
  const names = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const;
  const original = Object.fromEntries(names.map((n) => [n, tf.getKernel(n, 'wasm')]));
  if (names.some((n) => !original[n])) return false;
  const supported = (attrs: ConvAttrs) => {
    const d = attrs.dilations ?? 1;
    return (
      (attrs.dataFormat ?? 'NHWC') === 'NHWC' && (d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1))
    );
  };
  const make =
    (name: (typeof names)[number], fallback: KernelFunc): KernelFunc =>
    (args) => {
      const attrs = args.attrs as unknown as ConvAttrs;
      const inputs = args.inputs as Record<string, tf.TensorInfo | undefined>;
      const activation = attrs.activation ?? 'linear';
      if (
        !supported(attrs) ||
        (name === 'FusedConv2D' &&
          (inputs.preluActivationWeights || (activation !== 'linear' && activation !== 'relu')))
      ) {
        return fallback(args);
      }
      const backend = args.backend as unknown as WasmBackend;
      let xShape: [number, number, number, number];
      let filterShape: [number, number, number, number];
      if (name === 'Conv2DBackpropFilter') {
        xShape = inputs.x!.shape as typeof xShape;
        filterShape = attrs.filterShape!;
      } else if (name === 'Conv2DBackpropInput') {
        xShape = attrs.inputShape!;
        filterShape = inputs.filter!.shape as typeof filterShape;
      } else {
        xShape = inputs.x!.shape as typeof xShape;
        filterShape = inputs.filter!.shape as typeof filterShape;
      }
      const info = tf.backend_util.computeConv2DInfo(
        xShape,
        filterShape,
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
      );
      const [n, h, w, cin] = xShape;
      const [kh, kw, , cout] = filterShape;
      const shape = [
        n,
        h,
        w,
        cin,
        info.outHeight,
        info.outWidth,
        cout,
        kh,
        kw,
        info.strideHeight,
        info.strideWidth,
        info.padInfo.top,
        info.padInfo.left,
      ];
      const outShape =
        name === 'Conv2DBackpropFilter'
          ? filterShape
          : name === 'Conv2DBackpropInput'
            ? xShape
            : [n, info.outHeight, info.outWidth, cout];
      const out = backend.makeOutput(outShape, 'float32');
      const view = (t: tf.TensorInfo) => heapFloats(backend, t);
      const result = view(out);
      if (name === 'Conv2DBackpropFilter')
        blas.conv(...shape, 1, view(inputs.x!), view(inputs.dy!), result, convScratchFloats);
      else if (name === 'Conv2DBackpropInput')
        blas.conv(...shape, 2, view(inputs.dy!), view(inputs.filter!), result, convScratchFloats);
      else {
        blas.conv(...shape, 0, view(inputs.x!), view(inputs.filter!), result, convScratchFloats);
        const bias = inputs.bias;
        if (name === 'FusedConv2D' && (bias || activation === 'relu')) {
          const biasSize = bias ? bias.shape.reduce((a, b) => a * b, 1) : 0;
          if (bias && biasSize !== cout) {
            backend.disposeData(out.dataId);
            return fallback(args);
          }
          blas.biasRelu(
            result,
            n * info.outHeight * info.outWidth,
            cout,
            bias ? view(bias) : null,
            activation === 'relu',
          );
        }
      }
      return out;
    };
  for (const name of names) {
    const config = original[name]!;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...config, kernelFunc: make(name, config.kernelFunc) });
  }
  convRegistered = true;
  return true;
}

let reduceRegistered = false;

/**
 * Sum and Mean over every axis but the last (what batch norm reduces, and its gradients) in the
 * addon: the wasm kernels transpose the whole tensor first. Other reductions keep the wasm kernel.
 */
export function registerNativeReductions(): boolean {
  const blas = loadNative();
  if (!blas) return false;
  if (reduceRegistered) return true;
  for (const name of ['Sum', 'Mean'] as const) {
    const config = tf.getKernel(name, 'wasm');
    if (!config) return false;
    const fallback = config.kernelFunc;
    const kernelFunc: KernelFunc = (args) => {
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
      blas.colSum(
        heapFloats(backend, x),
        rows,
        cols,
        heapFloats(backend, out),
        name === 'Mean' ? 1 / rows : 1,
      );
      return out;
    };
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...config, kernelFunc });
  }
  reduceRegistered = true;
  return true;
}

const FUSED_LSE = 'ContrastiveFusedLse';
const FUSED_LSE_GRAD = 'ContrastiveFusedLseGrad';
let fusedRegistered = false;

/**
 * Registers the fused contrastive log-sum-exp on wasm: for flat features `F [M, D]`,
 * `lse_i = log Σ_{j≠i} exp(f_i·f_j / τ)` and its gradient, computed tile by tile in the addon, so
 * neither the forward nor the backward pass ever holds the `M × M` similarities (memory O(M·D)).
 */
export function registerFusedLse(): boolean {
  const blas = loadNative();
  if (!blas || !tf.findBackendFactory('wasm')) return false;
  if (fusedRegistered) return true;
  const views = (backend: WasmBackend, ...infos: tf.TensorInfo[]) => infos.map((t) => heapFloats(backend, t));
  tf.registerKernel({
    kernelName: FUSED_LSE,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const f = (inputs as { f: tf.TensorInfo }).f;
      const b = backend as unknown as WasmBackend;
      const [m, d] = f.shape;
      const out = b.makeOutput([m], 'float32');
      const [fv, ov] = views(b, f, out);
      blas.fusedLse(fv, m, d, 1 / (attrs as unknown as { temperature: number }).temperature, ov);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: FUSED_LSE_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { f, lse, dy } = inputs as { f: tf.TensorInfo; lse: tf.TensorInfo; dy: tf.TensorInfo };
      const b = backend as unknown as WasmBackend;
      const [m, d] = f.shape;
      const out = b.makeOutput([m, d], 'float32');
      const [fv, lv, dv, ov] = views(b, f, lse, dy, out);
      blas.fusedLseGrad(fv, lv, dv, m, d, 1 / (attrs as unknown as { temperature: number }).temperature, ov);
      return out;
    },
  });
  tf.registerGradient({
    kernelName: FUSED_LSE,
    inputsToSave: ['f'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [f, lse] = saved;
      return {
        f: () =>
          tf
            .engine()
            .runKernel(
              FUSED_LSE_GRAD,
              { f, lse, dy: dy as tf.Tensor },
              attrs as unknown as tf.NamedAttrMap,
            ) as tf.Tensor,
      };
    },
  });
  fusedRegistered = true;
  return true;
}

/**
 * `lse_i = log Σ_{j≠i} exp(f_i·f_j / τ)` for every row of `flat [M, D]` with the fused kernel,
 * or null when it is not available on the active backend (the caller then uses the tfjs form).
 */
export function fusedLogSumExpExcludingSelf(flat: tf.Tensor2D, temperature: number): tf.Tensor1D | null {
  if (tf.getBackend() !== 'wasm' || !fusedRegistered || process.env.CONTRASTIVE_FUSED === '0') return null;
  return tf
    .engine()
    .runKernel(FUSED_LSE, { f: flat }, { temperature } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}

let segmentRegistered = false;

/**
 * `UnsortedSegmentSum` for wasm (stock wasm has none), so per-group sums — and the gradient of a
 * gather — need no one-hot `[N, groups]` matrix. Returns false without the addon.
 */
export function registerNativeSegmentSum(): boolean {
  const blas = loadNative();
  if (!blas || !tf.findBackendFactory('wasm')) return false;
  if (segmentRegistered) return true;
  if (!tf.getKernel('UnsortedSegmentSum', 'wasm')) {
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: ({ inputs, backend, attrs }) => {
        const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
        const { numSegments } = attrs as unknown as { numSegments: number };
        if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32' || segmentIds.shape.length !== 1) {
          throw new Error('UnsortedSegmentSum on wasm: float32 data and 1-D int32 segment ids only');
        }
        const b = backend as unknown as WasmBackend;
        const n = x.shape[0];
        const d = x.shape.slice(1).reduce((p, q) => p * q, 1);
        const out = b.makeOutput([numSegments, ...x.shape.slice(1)], 'float32');
        blas.segmentSum(
          heapFloats(b, x),
          new Int32Array(b.wasm.HEAPU8.buffer, b.dataIdMap.get(segmentIds.dataId).memoryOffset, n),
          n,
          d,
          numSegments,
          heapFloats(b, out),
        );
        return out;
      },
    });
  }
  segmentRegistered = true;
  return true;
}

/** Whether group sums can use segment sums on the active backend (else one-hot matmuls). */
export function segmentSumsAvailable(): boolean {
  const backend = tf.getBackend();
  return backend === 'cpu' || backend === 'tensorflow' || (backend === 'wasm' && segmentRegistered);
}
