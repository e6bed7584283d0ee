import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../../errors.js';
import {
  type ConvAttrs,
  heapFloats,
  type KernelFamily,
  type KernelFunc,
  runWasmKernel,
  stockWasmKernel,
  type WasmBackend,
} from '../kernelTypes.js';
import { loadNative, type NativeEngine } from '../native.js';

const CONV_KERNELS = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const;
type ConvKernelName = (typeof CONV_KERNELS)[number];

/** The native call's mode per kernel (native/conv.c). */
const MODE: Record<ConvKernelName, number> = {
  Conv2D: 0,
  FusedConv2D: 0,
  Conv2DBackpropFilter: 1,
  Conv2DBackpropInput: 2,
};

let convScratchFloats = 16 * 2 ** 20;

/**
 * Caps the native im2col convolutions' column buffer (default 64 MB): the column matrix is built
 * for as many whole images at a time as fit, so a big batch costs no more scratch memory than this
 * (at least one image's columns). Smaller saves memory, larger saves a few GEMM calls. oneDNN's
 * convolutions need no column buffer.
 */
export function setConvScratchLimit(bytes: number): void {
  convScratchFloats = Math.max(1, Math.floor(bytes / 4));
}

/**
 * Turns the native engine's oneDNN convolutions off (`false`: im2col + OpenBLAS) or back on, and
 * returns what the addon then reports as its path; null without the addon. For comparisons
 * (tests, the bench); `CONTRASTIVE_ONEDNN=0` does the same for a whole process.
 */
export function setOneDnnConvolutions(on: boolean): string | null {
  const engine = loadNative();
  if (!engine) return null;
  engine.setConvPath(on);
  return engine.convPath();
}

/** The native convolutions' path (`oneDNN …` or `im2col + OpenBLAS (…)`), or null without the addon. */
export function nativeConvPath(): string | null {
  return loadNative()?.convPath() ?? null;
}

/**
 * Turns the pointwise form of 1×1 convolutions without padding (one sgemm over the pixels read,
 * strided ones gathered) off (`false`: they take oneDNN or im2col like any other) or back on;
 * false where the addon lacks it. For comparisons (tests, the bench).
 */
export function setPointwiseConvolutions(on: boolean): boolean {
  const engine = loadNative();
  if (!engine?.setPointwiseConv) return false;
  engine.setPointwiseConv(on);
  return true;
}

/** Native convolution calls so far per form, or null without the addon. */
export function nativeConvCounts(): { onednn: number; im2col: number; pointwise: number } | null {
  const engine = loadNative();
  if (!engine) return null;
  const [onednn, im2col, pointwise] = engine.convCounts();
  return { onednn, im2col, pointwise: pointwise ?? 0 };
}

/**
 * 2-D convolutions on wasm: forward (fused with bias and linear/ReLU) and both gradients.
 *
 * Native (NHWC, no dilation): oneDNN when the addon was built with it, im2col + OpenBLAS
 * otherwise or for a shape oneDNN declines — the addon decides, per call, in place on the wasm heap;
 * a 1×1 convolution without padding is one sgemm over the pixels it reads (the pointwise form:
 * oneDNN's convolution ran W2's 1×1 stride-2 shortcuts at a third or less of that sgemm's rate).
 *
 * Fallback: the stock XNNPACK `Conv2D`/`FusedConv2D`, and both gradients composed of stock wasm
 * kernels (the stock wasm backend has no filter gradient, and its input gradient is a plain loop,
 * ~10x slower than the XNNPACK Conv2D it can be made of).
 */
export const convFamily: KernelFamily = {
  name: 'convolutions',
  wasmKernels(engine) {
    const stock = {
      Conv2D: stockWasmKernel('Conv2D'),
      FusedConv2D: stockWasmKernel('FusedConv2D'),
      Conv2DBackpropFilter: { kernelFunc: composedFilterGradient(composedKernels()) },
      Conv2DBackpropInput: { kernelFunc: composedInputGradient(composedKernels()) },
    };
    return CONV_KERNELS.map((kernelName) => {
      const fallback = stock[kernelName].kernelFunc;
      return {
        kernelName,
        backendName: 'wasm',
        kernelFunc: engine ? nativeConv(engine, kernelName, fallback) : fallback,
      };
    });
  },
  wasmPath(engine) {
    return engine ? `native ${engine.convPath()}` : 'wasm XNNPACK Conv2D; gradients composed of wasm kernels';
  },
};

function nativeConv(engine: NativeEngine, name: ConvKernelName, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const attrs = args.attrs as unknown as ConvAttrs;
    const inputs = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const activation = attrs.activation ?? 'linear';
    const d = attrs.dilations ?? 1;
    const noDilation = d === 1 || (Array.isArray(d) && d[0] === 1 && d[1] === 1);
    const bias = name === 'FusedConv2D' ? inputs.bias : undefined;
    if (
      (attrs.dataFormat ?? 'NHWC') !== 'NHWC' ||
      !noDilation ||
      (name === 'FusedConv2D' &&
        (inputs.preluActivationWeights || (activation !== 'linear' && activation !== 'relu')))
    ) {
      return fallback(args);
    }
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
    const [n, h, w, cin] = xShape;
    const [kh, kw, , cout] = filterShape;
    // only a per-channel bias ([Cout]) is fused here
    if (bias && bias.shape.reduce((a, b) => a * b, 1) !== cout) return fallback(args);
    const info = tf.backend_util.computeConv2DInfo(
      xShape,
      filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
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
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(outShape, 'float32');
    // views only after the allocation: allocating may grow (move) the heap
    const view = (t: tf.TensorInfo) => heapFloats(backend, t);
    const [p, q] =
      name === 'Conv2DBackpropFilter'
        ? [inputs.x!, inputs.dy!]
        : name === 'Conv2DBackpropInput'
          ? [inputs.dy!, inputs.filter!]
          : [inputs.x!, inputs.filter!];
    engine.conv(
      ...shape,
      MODE[name],
      view(p),
      view(q),
      bias ? view(bias) : null,
      name === 'FusedConv2D' && activation === 'relu',
      view(out),
      convScratchFloats,
    );
    return out;
  };
}

/** The stock wasm kernels the composed gradients are made of, taken while they are still stock. */
interface ComposedKernels {
  Conv2D: tf.KernelConfig;
  PadV2: tf.KernelConfig;
  Reshape: tf.KernelConfig;
  Reverse: tf.KernelConfig;
  Slice: tf.KernelConfig;
  Transpose: tf.KernelConfig;
}

function composedKernels(): ComposedKernels {
  const names = ['Conv2D', 'PadV2', 'Reshape', 'Reverse', 'Slice', 'Transpose'] as const;
  return Object.fromEntries(names.map((n) => [n, stockWasmKernel(n)])) as unknown as ComposedKernels;
}

/** Runs composed steps, disposing every intermediate the steps `keep` once the result is made. */
function withTemporaries(
  backend: unknown,
  body: (keep: (t: tf.TensorInfo) => tf.TensorInfo) => tf.TensorInfo,
): tf.TensorInfo {
  const temps: tf.TensorInfo[] = [];
  try {
    return body((t) => {
      temps.push(t);
      return t;
    });
  } finally {
    for (const t of temps) (backend as WasmBackend).disposeData(t.dataId);
  }
}

/**
 * The input gradient of a 2-D convolution as a stride-1 convolution: the output gradient, dilated
 * by the strides (zeros between rows and columns) and padded, correlated with the spatially
 * flipped filter whose in/out channels are swapped:
 * `dx[h] = Σ_k P[h + k] · W[KH-1-k]ᵀ` with `P` = dilated `dy` padded by `KH-1-padTop` on top.
 */
function composedInputGradient(k: ComposedKernels): KernelFunc {
  return (args) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs;
    if (attrs.dataFormat === 'NCHW')
      throw new ContrastiveError('Conv2DBackpropInput on wasm supports NHWC only');
    const [kh, kw, cin, cout] = filter.shape as [number, number, number, number];
    const info = tf.backend_util.computeConv2DInfo(
      attrs.inputShape!,
      [kh, kw, cin, cout],
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const [n, h, w] = attrs.inputShape!;
    const [, oh, ow] = dy.shape;
    const sh = info.strideHeight;
    const sw = info.strideWidth;
    const b = args.backend;
    return withTemporaries(b, (keep) => {
      let g = dy;
      if (sh > 1 || sw > 1) {
        // dilate: [N, OH, 1, OW, 1, C] padded to [N, OH, sh, OW, sw, C], reshaped, cropped to (OH-1)·sh+1
        const r = keep(runWasmKernel(k.Reshape, b, { x: dy }, { shape: [n, oh, 1, ow, 1, cout] }));
        const paddings = [
          [0, 0],
          [0, 0],
          [0, sh - 1],
          [0, 0],
          [0, sw - 1],
          [0, 0],
        ];
        const p = keep(runWasmKernel(k.PadV2, b, { x: r }, { paddings, constantValue: 0 }));
        const flat = keep(runWasmKernel(k.Reshape, b, { x: p }, { shape: [n, oh * sh, ow * sw, cout] }));
        const size = [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, cout];
        g = keep(runWasmKernel(k.Slice, b, { x: flat }, { begin: [0, 0, 0, 0], size }));
      }
      const top = kh - 1 - info.padInfo.top;
      const left = kw - 1 - info.padInfo.left;
      const bottom = h + kh - 1 - top - ((oh - 1) * sh + 1);
      const right = w + kw - 1 - left - ((ow - 1) * sw + 1);
      if (top < 0 || left < 0)
        throw new ContrastiveError(
          'Conv2DBackpropInput on wasm: padding larger than the filter is not supported',
        );
      let padded = g;
      if (top || left || bottom > 0 || right > 0) {
        const paddings = [
          [0, 0],
          [top, Math.max(0, bottom)],
          [left, Math.max(0, right)],
          [0, 0],
        ];
        padded = keep(runWasmKernel(k.PadV2, b, { x: g }, { paddings, constantValue: 0 }));
      }
      if (bottom < 0 || right < 0) {
        const [, ph, pw] = padded.shape;
        const size = [n, ph + Math.min(0, bottom), pw + Math.min(0, right), cout];
        padded = keep(runWasmKernel(k.Slice, b, { x: padded }, { begin: [0, 0, 0, 0], size }));
      }
      const flipped = keep(runWasmKernel(k.Reverse, b, { x: filter }, { dims: [0, 1] }));
      const swapped = keep(runWasmKernel(k.Transpose, b, { x: flipped }, { perm: [0, 1, 3, 2] })); // [KH, KW, Cout, Cin]
      return runWasmKernel(
        k.Conv2D,
        b,
        { x: padded, filter: swapped },
        { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] },
      );
    });
  };
}

/**
 * The filter gradient of a 2-D convolution from the fast Conv2D (the classic identity): with the
 * batch and channel axes swapped, the input convolved by the output gradient, dilated by the
 * strides, is the filter gradient:
 * `dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, kh + s·oh, kw + s·ow, ci] · dy[n, oh, ow, co]`.
 */
function composedFilterGradient(k: ComposedKernels): KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs;
    if (attrs.dataFormat === 'NCHW')
      throw new ContrastiveError('Conv2DBackpropFilter on wasm supports NHWC only');
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape!,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const { top, bottom, left, right } = info.padInfo;
    const b = args.backend;
    return withTemporaries(b, (keep) => {
      const paddings = [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ];
      const padded =
        top || bottom || left || right
          ? keep(runWasmKernel(k.PadV2, b, { x }, { paddings, constantValue: 0 }))
          : x;
      const xT = keep(runWasmKernel(k.Transpose, b, { x: padded }, { perm: [3, 1, 2, 0] })); // [Cin, Hp, Wp, N]
      const dyT = keep(runWasmKernel(k.Transpose, b, { x: dy }, { perm: [1, 2, 0, 3] })); // [OH, OW, N, Cout]
      const full = keep(
        runWasmKernel(
          k.Conv2D,
          b,
          { x: xT, filter: dyT },
          {
            strides: [1, 1],
            pad: 'valid',
            dataFormat: 'NHWC',
            dilations: [info.strideHeight, info.strideWidth],
          },
        ),
      ); // [Cin, >= KH, >= KW, Cout]
      const [kh, kw, cin, cout] = attrs.filterShape!;
      const cropped = keep(
        runWasmKernel(k.Slice, b, { x: full }, { begin: [0, 0, 0, 0], size: [cin, kh, kw, cout] }),
      );
      return runWasmKernel(k.Transpose, b, { x: cropped }, { perm: [1, 2, 0, 3] });
    });
  };
}
