import { ContrastiveError, check } from '../errors.js';
import { closestNames } from '../hierarchy/closest.js';
import { formatLabelPath } from '../hierarchy/labelPath.js';
import type { LabelTree } from '../hierarchy/labelTree.js';
import { Rng } from '../random.js';

/** Row indices of the two parts of a split, each in ascending order (the data's own order). */
export interface Split {
  train: Int32Array;
  test: Int32Array;
}

/** Options of {@link trainTestSplit}. */
export interface TrainTestSplitOptions {
  /** Fraction of the rows (of each class, when stratified) that go to the test part, in (0, 1). Default 0.2. */
  testFraction?: number;
  /** Seed of the shuffle (default 0); ignored when `rng` is given. */
  seed?: number;
  /** A generator to draw from instead (its state advances), e.g. a run's. */
  rng?: Rng;
  /**
   * Split each class separately so both parts keep the class proportions. Default `true`. Every
   * class keeps at least one row in the training part.
   */
  stratify?: boolean;
  /** The level whose classes are kept in proportion; default the finest (L-1). */
  stratifyLevel?: number;
}

/**
 * Splits `[N, L]` label rows into a training and a test part with a seeded shuffle. Stratified
 * (the default): `round(n_c · testFraction)` rows of each class c (at most `n_c - 1`) go to the
 * test part, classes taken in ascending id order, each shuffled by `rng.permutation(n_c)`. With
 * `stratify: false`, `round(N · testFraction)` rows (at most N - 1) of one shuffle. The same seed
 * and labels always give the same split. For data without labels, pass `new Int32Array(N)` and 1.
 *
 * @example
 * ```ts
 * const { train, test } = trainTestSplit(labels, 3, { testFraction: 0.1, seed: 7 });
 * const trainImages = takeRows(images, 784, train);
 * ```
 */
export function trainTestSplit(
  labels: ArrayLike<number>,
  numLevels: number,
  options: TrainTestSplitOptions = {},
): Split {
  const fn = 'trainTestSplit';
  const fraction = options.testFraction ?? 0.2;
  check(
    typeof fraction === 'number' && fraction > 0 && fraction < 1,
    () => `${fn}: testFraction must be in (0, 1), but got ${String(fraction)}.`,
  );
  checkLabels(fn, labels, numLevels);
  const n = labels.length / numLevels;
  const level = options.stratifyLevel ?? numLevels - 1;
  check(
    Number.isInteger(level) && level >= 0 && level < numLevels,
    () => `${fn}: stratifyLevel must be an integer in [0, ${numLevels - 1}], but got ${level}.`,
  );
  const rng = options.rng ?? new Rng(options.seed ?? 0);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const key = options.stratify === false ? 0 : labels[i * numLevels + level];
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
  return fromMask(isTest);
}

/** Options of {@link holdOutClasses}. */
export interface HoldoutOptions {
  /** The tree the label rows were encoded with; needed to resolve class names and paths. */
  tree?: LabelTree;
}

/** The rows kept for training and the rows of the held-out classes. */
export interface HoldoutResult {
  /** Rows whose fine class is not held out, ascending. */
  kept: Int32Array;
  /** Rows of the held-out classes, ascending. */
  heldOut: Int32Array;
  /** The held-out leaf ids, in the order given. */
  heldOutClasses: number[];
  /**
   * The `[L]` label row of each held-out class (its ancestors at every level), in the order given;
   * `[]` for a class with no row when no tree was given.
   */
  heldOutRows: number[][];
}

/**
 * Holds out chosen fine classes for the unseen-class protocol: train on `kept`, then measure on
 * `heldOut` how well the coarser levels place classes the model never saw. Rows are matched on
 * their finest column (the leaf id). Classes are leaf ids, or with `options.tree` leaf names
 * (`'Sandal'`, when unique among the leaves) or full leaf paths (`'Goods/Shoes/Sandal'`).
 *
 * @example
 * ```ts
 * const { kept, heldOut } = holdOutClasses(labels, 3, ['Sandal', 'Shirt'], { tree });
 * ```
 */
export function holdOutClasses(
  labels: ArrayLike<number>,
  numLevels: number,
  classes: Iterable<string | number>,
  options: HoldoutOptions = {},
): HoldoutResult {
  const fn = 'holdOutClasses';
  checkLabels(fn, labels, numLevels);
  const { tree } = options;
  const list = [...classes];
  check(
    tree === undefined || tree.depth === numLevels,
    () =>
      `${fn}: the labels must have one column per level of the tree (${tree?.depth}), but have ${numLevels}.`,
  );
  const leaves = list.map((c) => resolveLeaf(fn, c, tree));
  const held = new Set(leaves);
  check(
    held.size === leaves.length,
    () => `${fn}: classes must be distinct, but got ${JSON.stringify(list)}.`,
  );
  const n = labels.length / numLevels;
  const isHeld = new Uint8Array(n);
  for (let i = 0; i < n; i++) if (held.has(labels[i * numLevels + numLevels - 1])) isHeld[i] = 1;
  const { train, test } = fromMask(isHeld);
  const heldOutRows = leaves.map((leaf) => {
    if (tree) return tree.row(leaf);
    const i = test.find((r) => labels[r * numLevels + numLevels - 1] === leaf);
    return i === undefined ? [] : Array.from({ length: numLevels }, (_, l) => labels[i * numLevels + l]);
  });
  return { kept: train, heldOut: test, heldOutClasses: leaves, heldOutRows };
}

function resolveLeaf(fn: string, c: string | number, tree: LabelTree | undefined): number {
  if (typeof c === 'number') {
    check(
      Number.isInteger(c) && c >= 0 && (tree === undefined || c < tree.numClasses()),
      () =>
        `${fn}: a class id must be an integer in [0, ${tree ? tree.numClasses() - 1 : 'numClasses - 1'}], but got ${c}.`,
    );
    return c;
  }
  check(
    tree !== undefined,
    () => `${fn}: a tree is needed to hold out classes by name, but got only ${JSON.stringify(c)}.`,
  );
  const depth = tree.depth;
  const names = tree.classes(depth - 1);
  const paths = names.map((_, id) => formatLabelPath(tree.path(depth - 1, id), tree.separator));
  const byPath = paths.indexOf(c);
  if (byPath >= 0) return byPath;
  const matches = names.flatMap((name, id) => (name === c ? [id] : []));
  check(
    matches.length < 2,
    () =>
      `${fn}: class ${JSON.stringify(c)} must name one leaf, but several have that name (${matches.map((id) => JSON.stringify(paths[id])).join(', ')}); give the full path.`,
  );
  if (matches.length === 1) return matches[0];
  const closest = closestNames(
    c,
    names.map((name, id) => ({ name, id })),
    3,
  ).map(({ id }) => JSON.stringify(paths[id]));
  throw new ContrastiveError(
    `${fn}: class ${JSON.stringify(c)} must be a leaf name or path of the tree, but is unknown${closest.length ? `; closest: ${closest.join(', ')}` : `; known: ${names.slice(0, 12).join(', ')}${names.length > 12 ? ', ...' : ''}`}.`,
  );
}

/**
 * Gathers rows of a row-major array: `rowSize` values per row (784 for a 28x28 image, L for label
 * rows), in the order of `indices`.
 */
export function takeRows<T extends Float32Array | Int32Array | Uint8Array>(
  data: T,
  rowSize: number,
  indices: ArrayLike<number>,
): T {
  check(
    Number.isInteger(rowSize) && rowSize > 0 && data.length % rowSize === 0,
    () =>
      `takeRows: rowSize must be a positive divisor of the data length ${data.length}, but got ${rowSize}.`,
  );
  const n = data.length / rowSize;
  const out = new (data.constructor as new (length: number) => T)(indices.length * rowSize);
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r];
    check(
      Number.isInteger(i) && i >= 0 && i < n,
      () => `takeRows: indices must be row numbers in [0, ${n - 1}], but index ${r} is ${i}.`,
    );
    out.set(data.subarray(i * rowSize, (i + 1) * rowSize), r * rowSize);
  }
  return out;
}

function checkLabels(fn: string, labels: ArrayLike<number>, numLevels: number): void {
  check(
    labels !== null && typeof labels === 'object' && typeof labels.length === 'number',
    () => `${fn}: labels must be [N, L] label rows, but got ${String(labels)}.`,
  );
  check(
    Number.isInteger(numLevels) && numLevels > 0 && labels.length % numLevels === 0,
    () =>
      `${fn}: labels must be [N, L] rows with numLevels = L > 0, but got ${labels.length} values for numLevels ${numLevels}.`,
  );
}

function fromMask(isTest: Uint8Array): Split {
  let numTest = 0;
  for (const v of isTest) numTest += v;
  const train = new Int32Array(isTest.length - numTest);
  const test = new Int32Array(numTest);
  for (let i = 0, a = 0, b = 0; i < isTest.length; i++) {
    if (isTest[i]) test[b++] = i;
    else train[a++] = i;
  }
  return { train, test };
}
