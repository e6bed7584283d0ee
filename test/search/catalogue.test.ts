/** The Catalogue over an index in memory: queries, search, one leave-one-out calibration, predict, dedupe. */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Catalogue, calibrateLeaveOneOut } from '../../src/catalogue/index.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { Rng } from '../../src/random.js';
import { calibrate, predictPath } from '../../src/search/index.js';
import { CLASSES, randomIndex } from '../serve/fixtures.js';

describe('Catalogue', () => {
  before(async () => {
    await useBackend('wasm');
  });

  it('turns a vector or an id into a vector, and refuses anything else in one line', async () => {
    const catalogue = Catalogue.fromIndex(randomIndex(40, 8));
    assert.deepEqual(await catalogue.query({ id: 3 }), catalogue.index.embedding(3));
    assert.deepEqual(
      Array.from(await catalogue.query({ vector: [1, 2, 3, 4, 5, 6, 7, 8] })),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    await assert.rejects(
      catalogue.query({ vector: [1, 2] }),
      /Catalogue\.query: query vector must have 8 values/,
    );
    await assert.rejects(
      catalogue.query({ vector: [1, 2, 3, 4, 5, 6, 7, Number.NaN] }),
      /query vector value 7 must be a finite number/,
    );
    await assert.rejects(catalogue.query({ id: 'nope' }), ContrastiveError);
    // this index records no model: an image query says what to pass instead
    await assert.rejects(catalogue.query({ image: 'x.png' }), /records no model .* pass the run folder/);
    assert.equal(catalogue.hasModel, false);
  });

  it('searches by id (leaving the item out, with its label) and by vector, within a node', async () => {
    const catalogue = Catalogue.fromIndex(randomIndex(60, 8));
    const byId = await catalogue.search({ id: 5 }, { k: 4, within: 'Clothes' });
    assert.deepEqual(byId.queryLabel, CLASSES[5 % CLASSES.length].split('/'));
    assert.equal(byId.hits.length, 4);
    for (const hit of byId.hits) {
      assert.notEqual(hit.id, '5');
      assert.equal(hit.label?.[0], 'Clothes');
    }
    const byVector = await catalogue.search({ vector: catalogue.index.embedding(5) }, { k: 1 });
    assert.equal(byVector.hits[0].id, '5');
    assert.equal(byVector.queryLabel, null);
  });

  it('calibrates leave-one-out exactly as calibrate() with selfIds does, and predicts with it', () => {
    const index = randomIndex(80, 8);
    const catalogue = Catalogue.fromIndex(index);
    assert.equal(catalogue.calibration, null);
    const calibrated = catalogue.calibrate({ limit: 50, targetPrecision: 0.9 });
    assert.ok(calibrated);
    assert.match(calibrated.on, /^50 labelled items of the index, each left out of its own neighbours$/);
    assert.equal(catalogue.calibration, calibrated.calibration);
    assert.equal(catalogue.calibratedOn, calibrated.on);
    // the same sample by hand: the seeded permutation of the labelled items, each its own selfId
    const labelled = index.items().filter((it) => it.label !== null);
    const sample = Array.from(new Rng(0).permutation(labelled.length).subarray(0, 50), (i) => labelled[i]);
    const byHand = calibrate(
      index,
      {
        embeddings: sample.map((it) => index.embedding(it.id)),
        labels: sample.map((it) => it.label!),
        selfIds: sample.map((it) => it.id),
      },
      { targetPrecision: 0.9 },
    );
    assert.deepEqual(calibrated.calibration.levels, byHand.levels);
    assert.deepEqual(
      calibrateLeaveOneOut(index, { limit: 50, targetPrecision: 0.9 })?.calibration.levels,
      byHand.levels,
    );
    const [place] = catalogue.predict([index.embedding(7)], { selfIds: ['7'] });
    assert.deepEqual(
      place,
      predictPath(index, [index.embedding(7)], { selfIds: ['7'], calibration: byHand })[0],
    );
    // too few labelled items: no calibration, raw confidences
    const tiny = Catalogue.fromIndex(randomIndex(1, 8));
    assert.equal(tiny.calibrate(), null);
    assert.equal(tiny.calibration, null);
  });

  it('dedupe finds a planted copy', () => {
    const index = randomIndex(30, 8);
    index.add([{ id: 'copy-of-4', label: CLASSES[0] }], [index.embedding(4)]);
    const report = Catalogue.fromIndex(index).dedupe({ threshold: 0.9999 });
    assert.deepEqual(
      report.pairs.map((p) => [p.a, p.b].sort()),
      [['4', 'copy-of-4']],
    );
  });
});
