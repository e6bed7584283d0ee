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
 * id. The stock one builds an `[N, D]` boolean mask (`logicalAnd` with `ones`) to select with,
 * which cost more than the loss itself in a SupCon step; here a negative id gathers an appended
 * zero row instead, so only `[N]` ids and one `[G + 1, D]` copy are made. Same values, every backend.
 */
export const unsortedSegmentSumGradient: tf.GradConfig = {
  kernelName: 'UnsortedSegmentSum',
  inputsToSave: ['segmentIds'],
  gradFunc: (dy, saved) => {
    const [segmentIds] = saved;
    return {
      x: () => {
        const g = dy as tf.Tensor;
        const groups = g.shape[0];
        const padded = tf.concat([g, tf.zeros([1, ...g.shape.slice(1)], g.dtype)]);
        const rows = tf.where(
          tf.greaterEqual(segmentIds, tf.scalar(0, 'int32')),
          segmentIds,
          tf.fill(segmentIds.shape, groups, 'int32'),
        );
        return tf.gather(padded, rows);
      },
    };
  },
};
