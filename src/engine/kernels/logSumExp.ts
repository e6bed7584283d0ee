import * as tf from '@tensorflow/tfjs-core';
import { heapFloats, type KernelFamily, type WasmBackend } from '../kernelTypes.js';

/** `lse_i = log Σ_{j≠i} exp(f_i·f_j / τ)` for flat features `F [M, D]`; attribute `temperature`. */
export const FUSED_LSE = 'ContrastiveFusedLse';
/** Its gradient w.r.t. `F`, given `F`, the forward's `lse` and `dy`. */
export const FUSED_LSE_GRAD = 'ContrastiveFusedLseGrad';

/**
 * The fused contrastive log-sum-exp on wasm, native only: computed tile by tile in the addon, so
 * neither the forward nor the backward pass ever holds the `M × M` similarities (memory O(M·D)).
 * Without it the losses compute the same in tfjs ops (src/losses/parts/logSumExp.ts decides).
 */
export const logSumExpFamily: KernelFamily = {
  name: 'contrastive log-sum-exp',
  wasmKernels(engine) {
    if (!engine) return [];
    const views = (backend: WasmBackend, ...infos: tf.TensorInfo[]) =>
      infos.map((t) => heapFloats(backend, t));
    const invTau = (attrs: unknown) => 1 / (attrs as { temperature: number }).temperature;
    return [
      {
        kernelName: FUSED_LSE,
        backendName: 'wasm',
        kernelFunc: ({ inputs, backend, attrs }) => {
          const f = (inputs as { f: tf.TensorInfo }).f;
          const b = backend as unknown as WasmBackend;
          const [m, d] = f.shape;
          const out = b.makeOutput([m], 'float32');
          const [fv, ov] = views(b, f, out);
          engine.fusedLse(fv, m, d, invTau(attrs), ov);
          return out;
        },
      },
      {
        kernelName: FUSED_LSE_GRAD,
        backendName: 'wasm',
        kernelFunc: ({ inputs, backend, attrs }) => {
          const { f, lse, dy } = inputs as { f: tf.TensorInfo; lse: tf.TensorInfo; dy: tf.TensorInfo };
          const b = backend as unknown as WasmBackend;
          const [m, d] = f.shape;
          const out = b.makeOutput([m, d], 'float32');
          const [fv, lv, dv, ov] = views(b, f, lse, dy, out);
          engine.fusedLseGrad(fv, lv, dv, m, d, invTau(attrs), ov);
          return out;
        },
      },
    ];
  },
  wasmPath(engine) {
    if (!engine) return 'tfjs ops (blocks of rows beyond one tile of logits)';
    const threads = engine.parallelThreads();
    return `native fused tiles ${threads === 0 ? 'single-threaded (built without OpenMP)' : `on ${threads} thread${threads === 1 ? '' : 's'}`}`;
  },
};

/** The fused kernel's gradient: the kernel above, on whatever backend has it. */
export const fusedLseGradient: tf.GradConfig = {
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
};

/** Whether the active backend has the fused kernel. */
export function fusedLogSumExpAvailable(): boolean {
  return tf.getKernel(FUSED_LSE, tf.getBackend()) !== undefined;
}

/** Runs the fused kernel on `flat [M, D]`; check {@link fusedLogSumExpAvailable} first. */
export function fusedLogSumExp(flat: tf.Tensor2D, temperature: number): tf.Tensor1D {
  return tf
    .engine()
    .runKernel(FUSED_LSE, { f: flat }, { temperature } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}
