import * as tf from '@tensorflow/tfjs-core';
import { heapFloats, type KernelFamily, type WasmBackend } from '../kernelTypes.js';

/**
 * The fused Adam / AdamW update of one variable: inputs `w`, `m`, `v`, `g` (float32, one shape),
 * attribute `scalars` = `[β1, 1-β1, β2, 1-β2, c1, c2, ε, lr, keep]` (`c1 = 1-β1^t`,
 * `c2 = 1-β2^t`, `keep = 1-lr·decay` for AdamW's decoupled decay, else 1); outputs
 * `[w', m', v']`.
 */
export const FUSED_ADAM = 'ContrastiveAdam';

/**
 * The optimiser's update on wasm, native only: one pass over a variable and its two moments per
 * step instead of ~15 element-wise ops, each a pass over memory and a fresh tensor. Bit-equal to
 * the tfjs ops it replaces (native/optimizer.c); without the addon (or with one built before
 * it) the optimiser runs those ops (src/train/optimizers.ts decides).
 */
export const optimizerFamily: KernelFamily = {
  name: 'Adam / AdamW update',
  wasmKernels(engine) {
    const adam = engine?.adam?.bind(engine);
    if (!adam) return [];
    return [
      {
        kernelName: FUSED_ADAM,
        backendName: 'wasm',
        kernelFunc: ({ inputs, backend, attrs }) => {
          const { w, m, v, g } = inputs as Record<'w' | 'm' | 'v' | 'g', tf.TensorInfo>;
          const b = backend as unknown as WasmBackend;
          const outs = [w, m, v].map((t) => b.makeOutput([...t.shape], 'float32'));
          // views only after the last allocation: allocating may move the heap
          const [wv, mv, vv, gv, wo, mo, vo] = [w, m, v, g, ...outs].map((t) => heapFloats(b, t));
          adam(wv, mv, vv, gv, Float64Array.from((attrs as { scalars: number[] }).scalars), wo, mo, vo);
          return outs;
        },
      },
    ];
  },
  wasmPath(engine) {
    return engine?.adam ? 'native, one pass per variable' : 'tfjs ops (~15 per variable)';
  },
};

/** Whether the active backend has the fused update. */
export function fusedAdamAvailable(): boolean {
  return tf.getKernel(FUSED_ADAM, tf.getBackend()) !== undefined;
}
