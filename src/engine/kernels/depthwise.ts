import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../../errors.js';
import {
  type ConvAttrs,
  heapFloats,
  type KernelFamily,
  type KernelFunc,
  stockWasmKernel,
  type WasmBackend,
} from '../kernelTypes.js';
import { loadNative, type NativeEngine } from '../native.js';

const DEPTHWISE_KERNELS = [
  'DepthwiseConv2dNative',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
] as const;
type DepthwiseKernelName = (typeof DEPTHWISE_KERNELS)[number];

/** The native call's mode per kernel (native/depthwise.c, the same modes as native/conv.c). */
const MODE: Record<DepthwiseKernelName, number> = {
  DepthwiseConv2dNative: 0,
  DepthwiseConv2dNativeBackpropFilter: 1,
  DepthwiseConv2dNativeBackpropInput: 2,
};

/** The native kernel's contract, which the JavaScript loops below share. */
type DepthwiseImpl = NativeEngine['depthwise'];

/** Native depthwise calls so far per form, or null without the addon. */
export function nativeDepthwiseCounts(): { onednn: number; direct: number } | null {
  const engine = loadNative();
  if (!engine) return null;
  const [onednn, direct] = engine.depthwiseCounts();
  return { onednn, direct };
}

/**
 * Depthwise 2-D convolutions on wasm (MobileNet's 3×3 layers): forward and both gradients, NHWC,
 * any channel multiplier, any strides, padding and dilation. tfjs-backend-wasm 4.22 has only the
 * forward, so without these a model with a depthwise layer cannot train on wasm.
 *
 * Native: the forward and the input gradient through oneDNN's grouped convolution (one group per
 * channel) when the addon was built with it and oneDNN is on (the switch the plain convolutions
 * share, `setOneDnnConvolutions`); direct C loops (OpenMP over rows, channels innermost) for the
 * filter gradient (faster than oneDNN's at MobileNetV2's shapes), without oneDNN, or for a shape
 * oneDNN declines (dilation, 'valid' windows that skip the last rows) — the addon decides, per
 * call, in place on the wasm heap.
 *
 * Fallback: the stock XNNPACK forward, and both gradients as plain JavaScript loops on the heap.
 * NCHW is refused (the stock forward refuses it too).
 */
export const depthwiseFamily: KernelFamily = {
  name: 'depthwise convolutions',
  wasmKernels(engine) {
    const stockForward = stockWasmKernel('DepthwiseConv2dNative').kernelFunc;
    return DEPTHWISE_KERNELS.map((kernelName) => ({
      kernelName,
      backendName: 'wasm',
      kernelFunc:
        kernelName === 'DepthwiseConv2dNative' && !engine
          ? stockForward
          : depthwiseKernel(kernelName, engine ? engine.depthwise : depthwiseLoops, stockForward),
    }));
  },
  wasmPath(engine) {
    if (!engine) return 'wasm XNNPACK forward; gradients in JavaScript loops';
    const conv = engine.convPath();
    return conv.startsWith('oneDNN')
      ? `native ${conv} grouped convolutions (filter gradient: direct loops)`
      : 'native direct loops';
  },
};

function depthwiseKernel(
  name: DepthwiseKernelName,
  impl: DepthwiseImpl,
  stockForward: KernelFunc,
): KernelFunc {
  return (args) => {
    const attrs = args.attrs as unknown as ConvAttrs;
    const inputs = args.inputs as Record<string, tf.TensorInfo>;
    if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC') {
      if (name === 'DepthwiseConv2dNative') return stockForward(args);
      throw new ContrastiveError(`${name} on wasm supports NHWC only`);
    }
    let xShape: [number, number, number, number];
    let filterShape: [number, number, number, number];
    let p: tf.TensorInfo;
    let q: tf.TensorInfo;
    if (name === 'DepthwiseConv2dNativeBackpropFilter') {
      xShape = inputs.x.shape as typeof xShape;
      filterShape = attrs.filterShape!;
      [p, q] = [inputs.x, inputs.dy];
    } else if (name === 'DepthwiseConv2dNativeBackpropInput') {
      xShape = attrs.inputShape!;
      filterShape = inputs.filter.shape as typeof filterShape;
      [p, q] = [inputs.dy, inputs.filter];
    } else {
      xShape = inputs.x.shape as typeof xShape;
      filterShape = inputs.filter.shape as typeof filterShape;
      [p, q] = [inputs.x, inputs.filter];
    }
    const info = tf.backend_util.computeConv2DInfo(
      xShape,
      filterShape,
      attrs.strides,
      attrs.dilations ?? 1,
      attrs.pad,
      attrs.dimRoundingMode,
      true,
    );
    const [n, h, w, c] = xShape;
    const [kh, kw, , m] = filterShape;
    const outShape =
      name === 'DepthwiseConv2dNativeBackpropFilter'
        ? filterShape
        : name === 'DepthwiseConv2dNativeBackpropInput'
          ? xShape
          : info.outShape;
    const backend = args.backend as unknown as WasmBackend;
    const out = backend.makeOutput(outShape, 'float32');
    // views only after the allocation: allocating may grow (move) the heap
    const view = (t: tf.TensorInfo) => heapFloats(backend, t);
    impl(
      n,
      h,
      w,
      c,
      m,
      info.outHeight,
      info.outWidth,
      kh,
      kw,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
      info.dilationHeight,
      info.dilationWidth,
      MODE[name],
      view(p),
      view(q),
      view(out),
    );
    return out;
  };
}

/**
 * The JavaScript form of the native kernel: every mode as one loop nest over (image, output pixel,
 * tap inside the input, channel, multiplier), accumulating into the zeroed output. Exported for
 * tests; the fallback's gradients.
 */
export const depthwiseLoops: DepthwiseImpl = (...args) => {
  const [n, h, w, c, m, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw, mode] = args as number[];
  const [p, q, out] = args.slice(16) as Float32Array[];
  const cm = c * m;
  out.fill(0);
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++) {
        const yi = ((b * oh + oy) * ow + ox) * cm; // output pixel
        for (let ky = 0; ky < kh; ky++) {
          const y = oy * sh + ky * dh - pt;
          if (y < 0 || y >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const x = ox * sw + kx * dw - pl;
            if (x < 0 || x >= w) continue;
            const xi = ((b * h + y) * w + x) * c; // input pixel
            const wi = (ky * kw + kx) * cm; // filter tap
            for (let ch = 0; ch < c; ch++)
              for (let j = 0; j < m; j++) {
                const k = ch * m + j;
                if (mode === 0) out[yi + k] += p[xi + ch] * q[wi + k];
                else if (mode === 1) out[wi + k] += p[xi + ch] * q[yi + k];
                else out[xi + ch] += p[yi + k] * q[wi + k];
              }
          }
        }
      }
};
