import * as tf from '@tensorflow/tfjs-core';

type KernelFunc = tf.KernelConfig['kernelFunc'];
type Backend = { disposeData(dataId: object): void };

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
  patched = true;
}

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
  const attrs = args.attrs as {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  if (attrs.dataFormat === 'NCHW') throw new Error('Conv2DBackpropFilter on wasm supports NHWC only');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { top, bottom, left, right } = info.padInfo;
  const backend = args.backend as unknown as Backend;
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
    const [kh, kw, cin, cout] = attrs.filterShape;
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
