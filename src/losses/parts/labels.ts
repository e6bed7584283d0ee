import * as tf from '@tensorflow/tfjs-core';
import { check, shapeString } from '../../errors.js';

/** Marks a level a row's label path does not reach (a partial label, see {@link readLabelMatrix}). */
export const UNKNOWN_LABEL = -1;

/** Integer labels as a dense row-major matrix. */
export interface LabelMatrix {
  values: Int32Array;
  rows: number;
  cols: number;
  /**
   * Set only when some entry is {@link UNKNOWN_LABEL}: `knownDepth[i]` is the number of leading
   * columns row i knows (0..L); its columns `knownDepth[i]..L-1` are all -1.
   */
  knownDepth?: Int32Array;
}

/** Options of {@link readLabelMatrix}. */
export interface ReadLabelsOptions {
  /**
   * Accept partial label paths: `-1` marks the levels a row does not know, and must fill every
   * column after the first -1 of the row (unknown levels lie below a known prefix, which may be
   * empty). Default false: every entry must be a non-negative integer.
   */
  allowUnknown?: boolean;
}

/** Labels as a tfjs tensor or plain (nested) arrays of non-negative integers. */
export type LabelsLike = tf.Tensor | ArrayLike<number> | ArrayLike<ArrayLike<number>>;

/**
 * Reads `[N]` or `[N, L]` labels into a matrix, checking that every entry is a non-negative
 * integer (or, with `allowUnknown`, -1 at the levels below a row's known prefix). A rank-1 input
 * becomes one column.
 */
export function readLabelMatrix(
  fn: string,
  name: string,
  labels: unknown,
  options: ReadLabelsOptions = {},
): LabelMatrix {
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
  const allowUnknown = options.allowUnknown ?? false;
  const where = (k: number) => (shape.length === 2 ? `[${Math.floor(k / cols)},${k % cols}]` : `[${k}]`);
  let anyUnknown = false;
  for (let k = 0; k < values.length; k++) {
    const v = flat[k];
    const ok =
      typeof v === 'number' &&
      Number.isInteger(v) &&
      v <= 0x7fffffff &&
      (v >= 0 || (allowUnknown && v === UNKNOWN_LABEL));
    check(ok, () =>
      v === UNKNOWN_LABEL
        ? `${fn}: ${name} must hold non-negative integers, but ${name}${where(k)} is -1 (an unknown level); this function needs every level known: drop rows with partial labels or keep the levels every row knows (finestCommonLevel).`
        : `${fn}: ${name} must hold non-negative integers${allowUnknown ? ' (or -1 at unknown levels)' : ''}, but ${name}${where(k)} is ${String(v)}.`,
    );
    if (v === UNKNOWN_LABEL) anyUnknown = true;
    values[k] = v;
  }
  if (!anyUnknown) return { values, rows, cols };
  const knownDepth = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    let d = 0;
    while (d < cols && values[i * cols + d] !== UNKNOWN_LABEL) d++;
    for (let c = d + 1; c < cols; c++) {
      check(
        values[i * cols + c] === UNKNOWN_LABEL,
        () =>
          `${fn}: ${name} row ${i} must mark unknown levels only below a known prefix (-1 at column ${d}, so every finer column must be -1 too), but ${name}${where(i * cols + c)} is ${values[i * cols + c]}.`,
      );
    }
    knownDepth[i] = d;
  }
  return { values, rows, cols, knownDepth };
}

/**
 * The finest level every row knows, and the class of each row there: what a flat loss (SupCon)
 * can use from partial label paths. The level's column holds per-level node ids (LabelTree's
 * encoding), so it identifies the class on its own.
 *
 * @param labels `[N, L]` label rows, coarsest first, -1 below a row's known prefix.
 * @throws ContrastiveError when some row knows no level at all (its whole path is -1).
 */
export function finestCommonLevel(
  fn: string,
  labels: LabelsLike,
): { level: number; labels: Int32Array; knownDepth: Int32Array | undefined } {
  const m = readLabelMatrix(fn, 'labels', labels, { allowUnknown: true });
  let depth = m.cols;
  let shallowest = -1;
  if (m.knownDepth) {
    for (let i = 0; i < m.rows; i++) {
      if (m.knownDepth[i] < depth) {
        depth = m.knownDepth[i];
        shallowest = i;
      }
    }
  }
  check(
    depth > 0,
    () =>
      `${fn}: every row needs a known class at some level for a flat (SupCon-style) loss, but labels row ${shallowest} knows no level (all -1); drop such rows or use hiMulConLoss, where a row takes part only in the levels it knows.`,
  );
  const level = depth - 1;
  const out = new Int32Array(m.rows);
  for (let i = 0; i < m.rows; i++) out[i] = m.values[i * m.cols + level];
  return { level, labels: out, knownDepth: m.knownDepth };
}

/** Samples grouped by one level of the hierarchy: `ids[i]` is the group of sample i. */
export interface Grouping {
  ids: Int32Array;
  /** `sizes[g]` = number of samples in group g. */
  sizes: Int32Array;
  /**
   * Present only when some row does not know this level: `known[i]` is 1 when sample i's label
   * path reaches the level. Unknown rows with the same known prefix share a group (their `-1`
   * is compared like a value, as `unique` would) but are never anchors or positives.
   */
  known?: Uint8Array;
}

/**
 * Groups rows by their label prefix (columns `0..c`), for every c, coarsest first: two samples
 * are in the same level-c group when they share the path prefix. Group ids are dense, in order
 * of first appearance. With partial labels each level's grouping carries a `known` mask.
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
    const grouping: Grouping = { ids, sizes: Int32Array.from(sizes) };
    if (labels.knownDepth) {
      const known = new Uint8Array(n);
      let all = true;
      for (let i = 0; i < n; i++) {
        known[i] = labels.knownDepth[rows[i]] > c ? 1 : 0;
        if (known[i] === 0) all = false;
      }
      if (!all) grouping.known = known;
    }
    out.push(grouping);
    parent = ids;
  }
  return out;
}

/** One group per sample: what NT-Xent uses (the only positives are the other views). */
export function singletonGrouping(n: number): Grouping {
  return { ids: Int32Array.from({ length: n }, (_, i) => i), sizes: new Int32Array(n).fill(1) };
}
