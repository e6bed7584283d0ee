import * as tf from '@tensorflow/tfjs-core';
import { check, shapeString } from '../../errors.js';

/** Integer labels as a dense row-major matrix. */
export interface LabelMatrix {
  values: Int32Array;
  rows: number;
  cols: number;
}

/** Labels as a tfjs tensor or plain (nested) arrays of non-negative integers. */
export type LabelsLike = tf.Tensor | ArrayLike<number> | ArrayLike<ArrayLike<number>>;

/**
 * Reads `[N]` or `[N, L]` labels into a matrix, checking that every entry is a non-negative
 * integer. A rank-1 input becomes one column.
 */
export function readLabelMatrix(fn: string, name: string, labels: unknown): LabelMatrix {
  let flat: ArrayLike<number>;
  let shape: number[];
  if (labels instanceof tf.Tensor) {
    flat = labels.dataSync() as ArrayLike<number>;
    shape = labels.shape;
  } else {
    check(
      labels !== null &&
        typeof labels === 'object' &&
        typeof (labels as ArrayLike<unknown>).length === 'number',
      () =>
        `${fn}: ${name} must be a tf.Tensor or an array of integers, but got ${labels === null ? 'null' : typeof labels}.`,
    );
    const outer = labels as ArrayLike<unknown>;
    const first = outer.length > 0 ? outer[0] : undefined;
    if (first !== null && typeof first === 'object') {
      const cols = (first as ArrayLike<number>).length;
      const values: number[] = [];
      for (let i = 0; i < outer.length; i++) {
        const row = outer[i] as ArrayLike<number>;
        check(
          row !== null && typeof row === 'object' && row.length === cols,
          () =>
            `${fn}: ${name} row ${i} must have ${cols} entries like row 0, but got ${row === null || typeof row !== 'object' ? String(row) : row.length}.`,
        );
        for (let j = 0; j < cols; j++) values.push(row[j]);
      }
      flat = values;
      shape = [outer.length, cols];
    } else {
      flat = outer as ArrayLike<number>;
      shape = [outer.length];
    }
  }
  check(
    shape.length === 1 || shape.length === 2,
    () => `${fn}: ${name} must be rank 1 [N] or rank 2 [N, L], but got shape ${shapeString(shape)}.`,
  );
  const rows = shape[0];
  const cols = shape.length === 2 ? shape[1] : 1;
  check(rows > 0 && cols > 0, () => `${fn}: ${name} is empty (shape ${shapeString(shape)}).`);
  const values = new Int32Array(rows * cols);
  for (let k = 0; k < values.length; k++) {
    const v = flat[k];
    check(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff, () => {
      const where = shape.length === 2 ? `[${Math.floor(k / cols)},${k % cols}]` : `[${k}]`;
      return `${fn}: ${name} must hold non-negative integers, but ${name}${where} is ${String(v)}.`;
    });
    values[k] = v;
  }
  return { values, rows, cols };
}

/** Samples grouped by one level of the hierarchy: `ids[i]` is the group of sample i. */
export interface Grouping {
  ids: Int32Array;
  /** `sizes[g]` = number of samples in group g. */
  sizes: Int32Array;
}

/**
 * Groups rows by their label prefix (columns `0..c`), for every c, coarsest first: two samples
 * are in the same level-c group when they share the path prefix. Group ids are dense, in order
 * of first appearance.
 */
export function prefixGroupings(labels: LabelMatrix, rowsToUse?: ArrayLike<number>): Grouping[] {
  const rows = rowsToUse ?? Array.from({ length: labels.rows }, (_, i) => i);
  const n = rows.length;
  const out: Grouping[] = [];
  let parent = new Int32Array(n);
  for (let c = 0; c < labels.cols; c++) {
    const ids = new Int32Array(n);
    const index = new Map<string, number>();
    const sizes: number[] = [];
    for (let i = 0; i < n; i++) {
      const key = `${parent[i]}/${labels.values[rows[i] * labels.cols + c]}`;
      let g = index.get(key);
      if (g === undefined) {
        g = sizes.length;
        index.set(key, g);
        sizes.push(0);
      }
      ids[i] = g;
      sizes[g]++;
    }
    out.push({ ids, sizes: Int32Array.from(sizes) });
    parent = ids;
  }
  return out;
}

/** One group per sample: what NT-Xent uses (the only positives are the other views). */
export function singletonGrouping(n: number): Grouping {
  return { ids: Int32Array.from({ length: n }, (_, i) => i), sizes: new Int32Array(n).fill(1) };
}
