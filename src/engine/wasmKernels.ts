import * as tf from '@tensorflow/tfjs-core';

import type { ConvAttrs, KernelFunc, WasmBackend } from './kernelTypes.js';

let patched = false;

/**
 * Gives the `wasm` backend what a training step needs and it lacks or does slowly.
 *
 * Matrix products take its fast path: the stock wasm BatchMatMul
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
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: 'wasm',
      kernelFunc: conv2DBackpropFilter,
    });
  }
  // the stock wasm input gradient is a plain loop, ~10x slower than the XNNPACK Conv2D it can be made of
  if (tf.getKernel('Conv2DBackpropInput', 'wasm')) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: conv2DBackpropInput,
  });
  shareInsteadOfCopy('Identity', () => true);
  shareInsteadOfCopy('Cast', (x, attrs) => (attrs as { dtype?: string }).dtype === x.dtype);
  patched = true;
}

/**
 * Makes `Identity` (and a `Cast` to the same dtype) return the input's data with one more
 * reference, as `Reshape` and the cpu backend already do, instead of copying it. Autodiff clones
 * every tensor it saves for the backward pass: on stock wasm each clone was a full copy, 0.9 of
 * the 1.6 GB a small-CNN step on 256 images held.
 */
function shareInsteadOfCopy(
  kernelName: string,
  applies: (x: tf.TensorInfo, attrs: unknown) => boolean,
): void {
  const original = tf.getKernel(kernelName, 'wasm');
  if (!original) return;
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const x = (args.inputs as { x: tf.TensorInfo }).x;
      if (x.dtype === 'string' || !applies(x, args.attrs)) return original.kernelFunc(args);
      (args.backend as unknown as { incRef(dataId: object): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}

/**
 * The input gradient of a 2-D convolution as a stride-1 convolution: the output gradient, dilated
 * by the strides (zeros between rows and columns) and padded, correlated with the spatially
 * flipped filter whose in/out channels are swapped:
 * `dx[h] = Σ_k P[h + k] · W[KH-1-k]ᵀ` with `P` = dilated `dy` padded by `KH-1-padTop` on top.
 */
const conv2DBackpropInput: KernelFunc = (args) => {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs;
  if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropInput on wasm supports NHWC only');
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
  const backend = args.backend as unknown as WasmBackend;
  const temps: tf.TensorInfo[] = [];
  const keep = (t: tf.TensorInfo) => {
    temps.push(t);
    return t;
  };
  try {
    let g = dy;
    if (sh > 1 || sw > 1) {
      // dilate: [N, OH, 1, OW, 1, C] padded to [N, OH, sh, OW, sw, C], reshaped, cropped to (OH-1)·sh+1
      const r = keep(run('Reshape', args, { x: dy }, { shape: [n, oh, 1, ow, 1, cout] }));
      const p = keep(
        run(
          'PadV2',
          args,
          { x: r },
          {
            paddings: [
              [0, 0],
              [0, 0],
              [0, sh - 1],
              [0, 0],
              [0, sw - 1],
              [0, 0],
            ],
            constantValue: 0,
          },
        ),
      );
      const flat = keep(run('Reshape', args, { x: p }, { shape: [n, oh * sh, ow * sw, cout] }));
      g = keep(
        run(
          'Slice',
          args,
          { x: flat },
          { begin: [0, 0, 0, 0], size: [n, (oh - 1) * sh + 1, (ow - 1) * sw + 1, cout] },
        ),
      );
    }
    const top = kh - 1 - info.padInfo.top;
    const left = kw - 1 - info.padInfo.left;
    const bottom = h + kh - 1 - top - ((oh - 1) * sh + 1);
    const right = w + kw - 1 - left - ((ow - 1) * sw + 1);
    if (top < 0 || left < 0)
      throw new Error('Conv2DBackpropInput on wasm: padding larger than the filter is not supported');
    let padded = g;
    if (top || left || bottom > 0 || right > 0) {
      padded = keep(
        run(
          'PadV2',
          args,
          { x: g },
          {
            paddings: [
              [0, 0],
              [top, Math.max(0, bottom)],
              [left, Math.max(0, right)],
              [0, 0],
            ],
            constantValue: 0,
          },
        ),
      );
    }
    if (bottom < 0 || right < 0) {
      const [, ph, pw] = padded.shape;
      padded = keep(
        run(
          'Slice',
          args,
          { x: padded },
          { begin: [0, 0, 0, 0], size: [n, ph + Math.min(0, bottom), pw + Math.min(0, right), cout] },
        ),
      );
    }
    const flipped = keep(run('Reverse', args, { x: filter }, { dims: [0, 1] }));
    const swapped = keep(run('Transpose', args, { x: flipped }, { perm: [0, 1, 3, 2] })); // [KH, KW, Cout, Cin]
    return run(
      'Conv2D',
      args,
      { x: padded, filter: swapped },
      { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', dilations: [1, 1] },
    );
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
};

/** Runs another wasm kernel on tensor infos (kernels cannot call tfjs ops). */
function run(
  name: string,
  args: Parameters<KernelFunc>[0],
  inputs: tf.NamedTensorInfoMap,
  attrs: object,
): tf.TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel) throw new Error(`wasm kernel ${name} is missing`);
  return kernel.kernelFunc({
    inputs,
    backend: args.backend,
    attrs: attrs as tf.NamedAttrMap,
  }) as tf.TensorInfo;
}

/**
 * The filter gradient of a 2-D convolution, which the stock wasm backend lacks, from its fast
 * Conv2D (the classic identity): with the batch and channel axes swapped, the input convolved by
 * the output gradient, dilated by the strides, is the filter gradient:
 * `dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, kh + s·oh, kw + s·ow, ci] · dy[n, oh, ow, co]`.
 */
const conv2DBackpropFilter: KernelFunc = (args) => {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs;
  if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape!,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { top, bottom, left, right } = info.padInfo;
  const backend = args.backend as unknown as WasmBackend;
  const temps: tf.TensorInfo[] = [];
  const keep = (t: tf.TensorInfo) => {
    temps.push(t);
    return t;
  };
  try {
    const padded =
      top || bottom || left || right
        ? keep(
            run(
              'PadV2',
              args,
              { x },
              {
                paddings: [
                  [0, 0],
                  [top, bottom],
                  [left, right],
                  [0, 0],
                ],
                constantValue: 0,
              },
            ),
          )
        : x;
    const xT = keep(run('Transpose', args, { x: padded }, { perm: [3, 1, 2, 0] })); // [Cin, Hp, Wp, N]
    const dyT = keep(run('Transpose', args, { x: dy }, { perm: [1, 2, 0, 3] })); // [OH, OW, N, Cout]
    const full = keep(
      run(
        'Conv2D',
        args,
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
    const cropped = keep(run('Slice', args, { x: full }, { begin: [0, 0, 0, 0], size: [cin, kh, kw, cout] }));
    return run('Transpose', args, { x: cropped }, { perm: [1, 2, 0, 3] });
  } finally {
    for (const t of temps) backend.disposeData(t.dataId);
  }
};

function transposeFirst(matMul: KernelFunc, transpose: KernelFunc): KernelFunc {
  return (args) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    if (!attrs.transposeA && !attrs.transposeB) return matMul(args);
    const backend = args.backend as unknown as WasmBackend;
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
