import assert from 'node:assert/strict';
import { it } from 'node:test';
import { holdOutClasses, trainTestSplit } from '../../src/data/splits.js';

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
