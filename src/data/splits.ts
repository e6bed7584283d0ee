import { check } from '../errors.js';
import { Rng } from '../random.js';

/** Row indices of a split. */
export interface Split {
  train: Int32Array;
  test: Int32Array;
}

/**
 * A seeded train/test split of `[N, L]` label rows: `testFraction` of every finest class goes to
 * test (stratified; at least one row of each class stays in training), or of all rows with
 * `stratify: false`.
 */
export function trainTestSplit(
  labels: Int32Array,
  numLevels: number,
  options: { testFraction?: number; seed?: number; stratify?: boolean } = {},
): Split {
  const fraction = options.testFraction ?? 0.2;
  check(
    fraction > 0 && fraction < 1,
    () => `trainTestSplit: testFraction must be in (0, 1), but got ${fraction}.`,
  );
  const n = labels.length / numLevels;
  const rng = new Rng(options.seed ?? 0);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const key = options.stratify === false ? 0 : labels[i * numLevels + numLevels - 1];
    const list = groups.get(key);
    if (list) list.push(i);
    else groups.set(key, [i]);
  }
  const isTest = new Uint8Array(n);
  for (const key of [...groups.keys()].sort((a, b) => a - b)) {
    const rows = groups.get(key)!;
    const order = rng.permutation(rows.length);
    const take = Math.min(rows.length - 1, Math.round(rows.length * fraction));
    for (let k = 0; k < take; k++) isTest[rows[order[k]]] = 1;
  }
  const pick = (want: number) =>
    Int32Array.from({ length: n }, (_, i) => i).filter((i) => isTest[i] === want);
  return { train: pick(0), test: pick(1) };
}

/** Rows whose finest label is (`heldOut`) or is not (`kept`) one of `fineIds`: the unseen-class protocol. */
export function holdOutClasses(
  labels: Int32Array,
  numLevels: number,
  fineIds: Iterable<number>,
): { kept: Int32Array; heldOut: Int32Array } {
  const held = new Set(fineIds);
  const n = labels.length / numLevels;
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const isHeld = (i: number) => held.has(labels[i * numLevels + numLevels - 1]);
  return { kept: all.filter((i) => !isHeld(i)), heldOut: all.filter(isHeld) };
}
