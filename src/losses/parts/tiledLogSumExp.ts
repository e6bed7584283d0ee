import * as tf from '@tensorflow/tfjs-core';
import { unaryCustomGrad } from './tidy.js';

/** Logit elements per tile by default: 64 MB of float32 per `[rows, M]` block. */
export const DEFAULT_TILE_ELEMENTS = 16 * 2 ** 20;

/**
 * `lse_i = log Σ_{j≠i} exp(f_i·f_j / τ)` for every row of `flat [M, D]`, computed in blocks of
 * rows with tfjs ops, so no `[M, M]` tensor ever exists — on any backend (browsers, stock wasm,
 * cpu, tfjs-node). The gradient recomputes each block's logits instead of keeping them:
 * `∂/∂F Σ_i dy_i lse_i = (P + Pᵀ) F / τ` with `P_ij = dy_i exp(s_ij − lse_i)`, `P_ii = 0`.
 * Memory O(rows·M + M·D) with `rows·M ≤ tileElements`; the native engine's fused kernel does the
 * same in C.
 */
export function tiledLogSumExpExcludingSelf(
  flat: tf.Tensor2D,
  temperature: number,
  tileElements = DEFAULT_TILE_ELEMENTS,
): tf.Tensor1D {
  const [m] = flat.shape;
  const blockRows = Math.max(1, Math.min(m, Math.floor(tileElements / m)));
  const blocks = Array.from({ length: Math.ceil(m / blockRows) }, (_, b) => ({
    start: b * blockRows,
    rows: Math.min(blockRows, m - b * blockRows),
  }));
  // logits of rows [start, start + rows) against all rows, the diagonal set to -∞
  const blockLogits = (f: tf.Tensor2D, start: number, rows: number) => {
    const block = tf.slice(f, [start, 0], [rows, -1]);
    const logits = tf.div(tf.matMul(block, f, false, true), temperature);
    const self = tf.cast(tf.oneHot(tf.range(start, start + rows, 1, 'int32'), m), 'bool');
    return { block, logits: tf.where(self, tf.fill([rows, m], Number.NEGATIVE_INFINITY), logits) };
  };
  const op = unaryCustomGrad((x, save) => {
    const f = x as tf.Tensor2D;
    const value = tf.concat(
      blocks.map(({ start, rows }) => tf.tidy(() => tf.logSumExp(blockLogits(f, start, rows).logits, 1))),
    );
    save([f, value]);
    return {
      value,
      gradFunc: (dy, saved) => {
        const [fs, lse] = saved as [tf.Tensor2D, tf.Tensor1D];
        let columns = tf.zerosLike(fs); // Σ over blocks of Pᵀ·block
        const rowParts: tf.Tensor[] = [];
        for (const { start, rows } of blocks) {
          const [rowPart, next] = tf.tidy(() => {
            const { block, logits } = blockLogits(fs, start, rows);
            const lseRows = tf.reshape(tf.slice(lse, [start], [rows]), [rows, 1]);
            const dyRows = tf.reshape(tf.slice(dy, [start], [rows]), [rows, 1]);
            const p = tf.mul(tf.exp(tf.sub(logits, lseRows)), tf.div(dyRows, temperature));
            return [tf.matMul(p, fs), tf.add(columns, tf.matMul(p, block, true, false))];
          });
          columns.dispose();
          columns = next;
          rowParts.push(rowPart);
        }
        const grad = tf.tidy(() => tf.add(tf.concat(rowParts), columns));
        tf.dispose([...rowParts, columns]);
        return grad;
      },
    };
  });
  return op(flat) as tf.Tensor1D;
}
