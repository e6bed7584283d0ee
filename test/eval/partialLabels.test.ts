/**
 * Partial labels (-1 below a known prefix) in the metrics: each level counts only the rows that
 * know it, exactly as if the others were not there.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  evaluateEmbeddings,
  hierarchyConsistency,
  knnClassify,
  retrievalMetrics,
} from '../../src/eval/index.js';
import { Rng } from '../../src/random.js';
import { forEachBackend } from '../helpers/backends.js';

/** Random embeddings with 3-level per-level-unique ids; `hidden` cuts some rows' paths short. */
function partialSet(seed: number, n: number) {
  const rng = new Rng(seed);
  const x = Array.from({ length: n }, () => Array.from({ length: 4 }, () => rng.normal()));
  const full = Array.from({ length: n }, () => {
    const a = rng.int(2);
    const b = a * 2 + rng.int(2);
    return [a, b, b * 2 + rng.int(2)];
  });
  const hidden = full.map((row) => {
    const u = rng.next();
    return u < 0.25 ? [row[0], -1, -1] : u < 0.5 ? [row[0], row[1], -1] : [...row];
  });
  return { x, full, hidden };
}

const knownAt = (rows: number[][], level: number) => rows.flatMap((r, i) => (r[level] === -1 ? [] : [i]));

forEachBackend('metrics with partial labels', () => {
  it('retrieval at each level equals retrieval over only the rows that know it', () => {
    for (const seed of [1, 2, 3]) {
      const { x, hidden } = partialSet(seed, 40);
      const all = tf.tensor2d(x);
      const partial = retrievalMetrics(all, hidden, { recallAt: [1, 3] });
      for (let level = 0; level < 3; level++) {
        const rows = knownAt(hidden, level);
        const sub = tf.tensor2d(rows.map((i) => x[i]));
        // truncating the paths at `level` makes every kept row fully known there
        const expected = retrievalMetrics(
          sub,
          rows.map((i) => hidden[i].slice(0, level + 1)),
          { recallAt: [1, 3] },
        )[level];
        assert.deepEqual({ ...partial[level], level }, expected, `seed ${seed} level ${level}`);
        sub.dispose();
      }
      assert.ok(partial[2].numQueries < partial[0].numQueries);
      all.dispose();
    }
  });

  it('kNN votes only with database rows that know the level and scores only queries that know it', () => {
    const { x, full, hidden } = partialSet(7, 60);
    const q = tf.tensor2d(x.slice(0, 20));
    const db = tf.tensor2d(x.slice(20));
    const dbLabels = hidden.slice(20);
    const result = knnClassify(q, hidden.slice(0, 20), db, dbLabels, { k: 5 });
    const voters = knownAt(dbLabels, 2);
    const dbKnown = tf.tensor2d(voters.map((i) => x[20 + i]));
    const queriesFine = knownAt(hidden.slice(0, 20), 2);
    const reference = knnClassify(
      q,
      full.slice(0, 20),
      dbKnown,
      voters.map((i) => dbLabels[i]),
      { k: 5 },
    );
    // same votes as a database of only the known rows
    assert.deepEqual(Array.from(result.predicted.values), Array.from(reference.predicted.values));
    const hits = queriesFine.filter((i) =>
      [0, 1, 2].every((c) => reference.predicted.values[i * 3 + c] === full[i][c]),
    ).length;
    assert.equal(result.accuracyByLevel[2], hits / queriesFine.length);
    tf.dispose([q, db, dbKnown]);
  });

  it('consistency skips anchors and items that do not know the finer level; evaluateEmbeddings runs', () => {
    const { x, hidden } = partialSet(11, 50);
    const e = tf.tensor2d(x);
    const fineRows = knownAt(hidden, 2);
    const c = hierarchyConsistency(e, hidden);
    const known2 = hidden.map((r) => r[2] !== -1);
    const sub = tf.tensor2d(fineRows.map((i) => x[i]));
    const onlyFull = hierarchyConsistency(
      sub,
      fineRows.map((i) => hidden[i]),
    );
    // level 1 (fine vs family) triples involve only rows that know the class
    assert.deepEqual(c.byLevel[1], onlyFull.byLevel[1]);
    assert.ok(known2.some((k) => !k));
    const summary = evaluateEmbeddings(
      { embeddings: e, labels: hidden },
      { embeddings: e, labels: hidden },
      { knnK: 5, linearProbe: { epochs: 1 }, projectionPoints: 0 },
    );
    assert.equal(summary.retrieval[2].numQueries <= fineRows.length, true);
    assert.ok(Number.isFinite(summary.linearProbe?.testAccuracy ?? Number.NaN));
    tf.dispose([e, sub]);
  });
});
