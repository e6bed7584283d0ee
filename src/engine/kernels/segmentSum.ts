import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../../errors.js';
import { heapFloats, type KernelFamily, type WasmBackend } from '../kernelTypes.js';

/**
 * `UnsortedSegmentSum` on wasm, which stock wasm lacks, so per-group sums — and the gradient of a
 * gather — need no one-hot `[N, groups]` matrix. Native only; without the addon there is no such
 * kernel on wasm and the losses use one-hot matmuls ({@link segmentSumsAvailable}).
 */
export const segmentSumFamily: KernelFamily = {
  name: 'segment sums',
  wasmKernels(engine) {
    if (!engine) return [];
    return [
      {
        kernelName: 'UnsortedSegmentSum',
        backendName: 'wasm',
        kernelFunc: ({ inputs, backend, attrs }) => {
          const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
          const { numSegments } = attrs as unknown as { numSegments: number };
          if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32' || segmentIds.shape.length !== 1) {
            throw new ContrastiveError(
              'UnsortedSegmentSum on wasm: float32 data and 1-D int32 segment ids only',
            );
          }
          const b = backend as unknown as WasmBackend;
          const n = x.shape[0];
          const d = x.shape.slice(1).reduce((p, q) => p * q, 1);
          const out = b.makeOutput([numSegments, ...x.shape.slice(1)], 'float32');
          engine.segmentSum(
            heapFloats(b, x),
            new Int32Array(b.wasm.HEAPU8.buffer, b.dataIdMap.get(segmentIds.dataId).memoryOffset, n),
            n,
            d,
            numSegments,
            heapFloats(b, out),
          );
          return out;
        },
      },
    ];
  },
  wasmPath(engine) {
    return engine ? 'native' : 'none on wasm: group sums use one-hot matmuls';
  },
};

/** Whether group sums can use segment sums on the active backend (else one-hot matmuls). */
export function segmentSumsAvailable(): boolean {
  return tf.getKernel('UnsortedSegmentSum', tf.getBackend()) !== undefined;
}

/**
 * The gradient of `UnsortedSegmentSum` w.r.t. `x`: `dy` gathered by segment id, 0 for a negative
 * id. The stock one builds a `[N, D]` boolean mask (`logicalAnd` with `ones`) to select with,
 * which cost more than the loss itself in a SupCon step; a `[N, 1]` condition selects the same rows.
 * Same values, every backend.
 */
export const unsortedSegmentSumGradient: tf.GradConfig = {
  kernelName: 'UnsortedSegmentSum',
  inputsToSave: ['segmentIds'],
  gradFunc: (dy, saved) => {
    const [segmentIds] = saved;
    return {
      x: () => {
        const zero = tf.scalar(0, 'int32');
        const gathered = tf.gather(dy as tf.Tensor, tf.maximum(segmentIds, zero));
        // [N, 1, …]: broadcast by where itself, instead of a logicalAnd with an [N, D] ones tensor
        const kept = tf.reshape(tf.greaterEqual(segmentIds, zero), [
          segmentIds.shape[0],
          ...gathered.shape.slice(1).map(() => 1),
        ]);
        return tf.where(kept, gathered, tf.zerosLike(gathered));
      },
    };
  },
};
