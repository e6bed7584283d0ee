import assert from 'node:assert/strict';
import { it } from 'node:test';
import { holdOutClasses, takeRows, trainTestSplit } from '../../src/data/splits.js';
import { ContrastiveError } from '../../src/errors.js';
import { LabelTree } from '../../src/hierarchy/index.js';
import { Rng } from '../../src/random.js';

// 2-level rows: 3 fine classes of 10, 20 and 1 rows
const labels = Int32Array.from(
  [...Array.from({ length: 10 }, () => [0, 0]), ...Array.from({ length: 20 }, () => [0, 1]), [1, 2]].flat(),
);

it('trainTestSplit is stratified, seeded, disjoint and keeps every class in training', () => {
  const a = trainTestSplit(labels, 2, { testFraction: 0.3, seed: 1 });
  assert.equal(a.train.length + a.test.length, 31);
  assert.equal(new Set([...a.train, ...a.test]).size, 31);
  const fine = (rows: Int32Array) => Array.from(rows, (i) => labels[2 * i + 1]);
  assert.deepEqual(
    [0, 1, 2].map((c) => fine(a.test).filter((f) => f === c).length),
    [3, 6, 0],
  );
  assert.deepEqual(trainTestSplit(labels, 2, { testFraction: 0.3, seed: 1 }), a);
  assert.notDeepEqual(trainTestSplit(labels, 2, { testFraction: 0.3, seed: 2 }).test, a.test);
  assert.throws(
    () => trainTestSplit(labels, 2, { testFraction: 1 }),
    /testFraction must be in \(0, 1\), but got 1/,
  );
});

it('holdOutClasses separates the rows of the chosen fine classes', () => {
  const { kept, heldOut } = holdOutClasses(labels, 2, [1, 2]);
  assert.equal(kept.length, 10);
  assert.equal(heldOut.length, 21);
  assert.ok(Array.from(kept).every((i) => labels[2 * i + 1] === 0));
});

const fails = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));

it('trainTestSplit: unstratified, coarse-level stratification, a shared rng, and bad arguments', () => {
  const plain = trainTestSplit(labels, 2, { testFraction: 0.2, seed: 3, stratify: false });
  assert.equal(plain.test.length, 6);
  assert.deepEqual(
    Array.from(plain.train),
    [...plain.train].sort((a, b) => a - b),
  );
  // stratified on level 0: 30 rows of group 0 -> 6 to test, the single group-1 row stays in training
  const coarse = trainTestSplit(labels, 2, { testFraction: 0.2, stratifyLevel: 0 });
  assert.equal(coarse.test.length, 6);
  assert.ok(Array.from(coarse.test).every((i) => labels[2 * i] === 0));
  // a caller's generator is used (and advanced) instead of the seed
  const rng = new Rng(9);
  const first = trainTestSplit(labels, 2, { rng });
  const second = trainTestSplit(labels, 2, { rng });
  assert.deepEqual(first, trainTestSplit(labels, 2, { rng: new Rng(9) }));
  assert.notDeepEqual(first.test, second.test);
  // unlabelled data: one class
  assert.equal(trainTestSplit(new Int32Array(50), 1, { testFraction: 0.1 }).test.length, 5);
  fails(
    () => trainTestSplit(labels, 3),
    /trainTestSplit: labels must be \[N, L\] rows with numLevels = L > 0, but got 62 values for numLevels 3\./,
  );
  fails(
    () => trainTestSplit(labels, 2, { stratifyLevel: 2 }),
    /stratifyLevel must be an integer in \[0, 1\], but got 2\./,
  );
});

it('a stratified split of Fashion-MNIST-like labels keeps class proportions', () => {
  const rows = new Int32Array(1000 * 3);
  const rng = new Rng(5);
  for (let i = 0; i < 1000; i++) rows.set([0, 0, rng.int(10)], i * 3);
  const { train, test } = trainTestSplit(rows, 3, { testFraction: 0.25, seed: 11 });
  for (let c = 0; c < 10; c++) {
    const total = Array.from({ length: 1000 }, (_, i) => i).filter((i) => rows[i * 3 + 2] === c).length;
    const inTest = Array.from(test).filter((i) => rows[i * 3 + 2] === c).length;
    assert.equal(inTest, Math.min(total - 1, Math.round(total * 0.25)));
  }
  assert.equal(train.length + test.length, 1000);
});

it('holdOutClasses resolves names and paths through the tree and returns the held-out rows', () => {
  const tree = LabelTree.fromPaths([
    'Clothes/Tops/Shirt',
    'Clothes/Bottoms/Trouser',
    'Goods/Shoes/Sandal',
    'Goods/Bags/Bag',
  ]);
  const rows = tree.encode([
    'Goods/Shoes/Sandal',
    'Clothes/Tops/Shirt',
    'Goods/Bags/Bag',
    'Goods/Shoes/Sandal',
    'Clothes/Bottoms/Trouser',
  ]);
  const out = holdOutClasses(rows, 3, ['Sandal', 'Clothes/Tops/Shirt'], { tree });
  assert.deepEqual(Array.from(out.heldOut), [0, 1, 3]);
  assert.deepEqual(Array.from(out.kept), [2, 4]);
  assert.deepEqual(out.heldOutClasses, [2, 0]);
  assert.deepEqual(out.heldOutRows, [
    [1, 2, 2],
    [0, 0, 0],
  ]);
  assert.deepEqual(holdOutClasses(rows, 3, [3]).heldOutRows, [[1, 3, 3]]);
  fails(
    () => holdOutClasses(rows, 3, ['Sandals'], { tree }),
    /^holdOutClasses: class "Sandals" must be a leaf name or path of the tree, but is unknown; closest: "Goods\/Shoes\/Sandal"\.$/,
  );
  fails(
    () => holdOutClasses(rows, 3, ['Sandal']),
    /a tree is needed to hold out classes by name, but got only "Sandal"/,
  );
  fails(
    () => holdOutClasses(rows, 3, [7], { tree }),
    /a class id must be an integer in \[0, 3\], but got 7\./,
  );
  fails(
    () => holdOutClasses(rows, 3, [2, 'Sandal'], { tree }),
    /classes must be distinct, but got \[2,"Sandal"\]/,
  );
  fails(
    () => holdOutClasses(rows.subarray(0, 12), 2, [1], { tree }),
    /labels must have one column per level of the tree \(3\), but have 2/,
  );
  const shared = LabelTree.fromPaths(['A/Other', 'B/Other'], { allowSharedNames: true });
  fails(
    () => holdOutClasses(shared.encode(['A/Other']), 2, ['Other'], { tree: shared }),
    /class "Other" must name one leaf, but several have that name \("A\/Other", "B\/Other"\); give the full path\./,
  );
});

it('takeRows gathers rows in the given order', () => {
  const data = Float32Array.from([0, 1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(takeRows(data, 2, [2, 0])), [4, 5, 0, 1]);
  assert.ok(takeRows(Int32Array.from([1, 2]), 1, [1]) instanceof Int32Array);
  fails(
    () => takeRows(data, 4, [0]),
    /takeRows: rowSize must be a positive divisor of the data length 6, but got 4\./,
  );
  fails(
    () => takeRows(data, 2, [0, 3]),
    /takeRows: indices must be row numbers in \[0, 2\], but index 1 is 3\./,
  );
});
