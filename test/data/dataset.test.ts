/** Training data: a validation split carved from the training set replaces the test set. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { loadTrainingData } from '../../src/data/dataset.js';
import { resolveTrainConfig } from '../../src/train/config.js';

it('validationFraction holds out a stratified, seeded part of the training split as the evaluation split', async () => {
  const base = { data: 'fashion-mnist', trainLimit: 600, testLimit: 100, seed: 4 };
  const full = await loadTrainingData(base);
  const data = await loadTrainingData({ ...base, validationFraction: 0.1 });
  assert.equal(data.train.size + data.test.size, full.train.size);
  const key = (inputs: Float32Array, i: number) => inputs.subarray(i * 784, (i + 1) * 784).join(',');
  const original = new Set(Array.from({ length: full.train.size }, (_, i) => key(full.train.inputs, i)));
  const trainRows = new Set(Array.from({ length: data.train.size }, (_, i) => key(data.train.inputs, i)));
  const perClass = new Map<number, number>();
  for (let i = 0; i < data.test.size; i++) {
    const row = key(data.test.inputs, i);
    assert.ok(original.has(row), 'a validation row is not from the training split');
    assert.ok(!trainRows.has(row), 'a validation row is also a training row');
    const fine = data.test.labels[i * 3 + 2];
    perClass.set(fine, (perClass.get(fine) ?? 0) + 1);
  }
  // stratified: round(10%) of each class
  const classSizes = new Map<number, number>();
  for (let i = 0; i < full.train.size; i++) {
    const fine = full.train.labels[i * 3 + 2];
    classSizes.set(fine, (classSizes.get(fine) ?? 0) + 1);
  }
  for (const [fine, size] of classSizes) assert.equal(perClass.get(fine) ?? 0, Math.round(size * 0.1));
  const again = await loadTrainingData({ ...base, validationFraction: 0.1 });
  assert.deepEqual(again.test.labels, data.test.labels);
  assert.match(data.source, /10% of the training split held out for validation/);
  await assert.rejects(
    resolveTrainConfig({ out: 'x', validationFraction: 1 } as never),
    /--validation-fraction must be in \[0, 1\), but got 1/,
  );
});
