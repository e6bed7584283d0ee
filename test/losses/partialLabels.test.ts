/**
 * Partial label paths (-1 below a known prefix) in the hierarchical losses: a row takes part only
 * in the levels it knows, is never a positive where it is unknown, and stays in every denominator.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import {
  ContrastiveError,
  finestCommonLevel,
  hiMulConLossDetails,
  Rng,
  supConLoss,
  UNKNOWN_LABEL,
} from '../../src/index.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

const RUNS = { seed: 20261201, numRuns: 25 };

const batchArb = fc.record({
  n: fc.integer({ min: 3, max: 9 }),
  v: fc.integer({ min: 1, max: 3 }),
  d: fc.integer({ min: 2, max: 5 }),
  levels: fc.integer({ min: 2, max: 3 }),
  branching: fc.integer({ min: 1, max: 3 }),
  temperature: fc.constantFrom(0.1, 0.5),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

interface Drawn {
  features: number[][][];
  labels: number[][];
  hidden: number[][];
  hiddenRows: Set<number>;
}

/** Random features, random label paths, and the same paths with the finest label of some rows hidden. */
function draw(b: {
  n: number;
  v: number;
  d: number;
  levels: number;
  branching: number;
  seed: number;
}): Drawn {
  const rng = new Rng(b.seed);
  const features = Array.from({ length: b.n }, () =>
    Array.from({ length: b.v }, () => Array.from({ length: b.d }, () => rng.normal())),
  );
  // per-level node ids as LabelTree encodes them: a child id is unique within its level
  const labels = Array.from({ length: b.n }, () => {
    const row: number[] = [];
    let id = 0;
    for (let l = 0; l < b.levels; l++) {
      id = id * b.branching + rng.int(b.branching);
      row.push(id);
    }
    return row;
  });
  const hiddenRows = new Set<number>();
  for (let i = 0; i < b.n; i++) if (rng.next() < 0.4) hiddenRows.add(i);
  if (hiddenRows.size === 0) hiddenRows.add(0);
  const hidden = labels.map((row, i) =>
    hiddenRows.has(i) ? [...row.slice(0, -1), UNKNOWN_LABEL] : [...row],
  );
  return { features, labels, hidden, hiddenRows };
}

/**
 * Float64 loop straight from the definition: the SupCon term of one level over the rows that know
 * it, the denominator over every row but the anchor (known or not).
 */
function levelOracle(
  features: number[][][],
  labels: number[][],
  column: number,
  temperature: number,
): number {
  const n = features.length;
  const v = features[0].length;
  const rows: { sample: number; f: number[] }[] = [];
  for (let view = 0; view < v; view++)
    for (let i = 0; i < n; i++) {
      const f = features[i][view];
      const norm = Math.hypot(...f);
      rows.push({ sample: i, f: f.map((x) => x / norm) });
    }
  const known = (i: number) => labels[i][column] !== UNKNOWN_LABEL;
  const same = (i: number, j: number) => {
    for (let c = 0; c <= column; c++) if (labels[i][c] !== labels[j][c]) return false;
    return true;
  };
  const dot = (a: number[], b: number[]) => a.reduce((s, x, k) => s + x * b[k], 0);
  let total = 0;
  let counted = 0;
  rows.forEach((anchor, a) => {
    if (!known(anchor.sample)) return;
    const logits = rows.map((r) => dot(anchor.f, r.f) / temperature);
    const others = logits.filter((_, k) => k !== a);
    const max = Math.max(...others);
    const lse = max + Math.log(others.reduce((s, x) => s + Math.exp(x - max), 0));
    let sum = 0;
    let count = 0;
    rows.forEach((r, p) => {
      if (p === a || !known(r.sample) || !same(anchor.sample, r.sample)) return;
      sum += logits[p] - lse;
      count++;
    });
    if (count > 0) {
      total += -sum / count;
      counted++;
    }
  });
  return counted > 0 ? total / counted : 0;
}

function scalar(x: tf.Scalar): number {
  return x.dataSync()[0];
}

forEachBackend('partial labels', () => {
  it('hiding the finest label of some rows changes only the finest-level terms (paper mode)', () => {
    fc.assert(
      fc.property(batchArb, (b) => {
        const { features, labels, hidden } = draw(b);
        tf.tidy(() => {
          const f = tf.tensor3d(features);
          for (const variant of ['hmc', 'hce', 'hmce'] as const) {
            const opts = { temperature: b.temperature, variant };
            const full = hiMulConLossDetails(f, labels, opts);
            const part = hiMulConLossDetails(f, hidden, opts);
            const finest = b.levels - 1;
            for (let c = 0; c < finest; c++) {
              // same groupings, same code path: bit-identical
              assert.equal(
                scalar(part.levels[c].rawLoss),
                scalar(full.levels[c].rawLoss),
                `${variant} level ${c}`,
              );
              assert.equal(part.levels[c].numAnchorsCounted, full.levels[c].numAnchorsCounted);
            }
            expectClose(
              scalar(part.levels[finest].rawLoss),
              levelOracle(features, hidden, finest, b.temperature),
              { rtol: 1e-4, atol: 1e-5 },
              `${variant} finest level against the loop`,
            );
            expectClose(
              scalar(full.levels[finest].rawLoss),
              levelOracle(features, labels, finest, b.temperature),
              { rtol: 1e-4, atol: 1e-5 },
              `${variant} finest level, all known`,
            );
            if (variant === 'hmc') {
              // the total moves by exactly the finest level's weighted difference
              const w = full.levels[finest].weight / b.levels;
              const delta = (scalar(part.levels[finest].rawLoss) - scalar(full.levels[finest].rawLoss)) * w;
              expectClose(
                scalar(part.loss),
                scalar(full.loss) + delta,
                { rtol: 1e-5, atol: 1e-6 },
                'hmc total',
              );
            }
          }
        });
      }),
      RUNS,
    );
  });

  it('a row unknown at a level is no anchor and no positive there, but stays in the denominators', () => {
    // samples 0,1 share the full path; 2 shares only the coarse class and hides its fine label
    const features = tf.tensor3d([[[1, 0]], [[0.8, 0.6]], [[0.6, 0.8]], [[0, 1]]]);
    const labels = [
      [0, 0],
      [0, 0],
      [0, UNKNOWN_LABEL],
      [1, 1],
    ];
    const details = hiMulConLossDetails(features, labels, { temperature: 0.5, variant: 'hmc' });
    assert.equal(details.levels[1].numKnown, 3);
    assert.equal(details.levels[1].numAnchorsCounted, 2, 'only samples 0 and 1 have a fine positive');
    assert.equal(details.levels[0].numAnchorsCounted, 3, 'sample 2 still anchors at the coarse level');
    const withDenominator = levelOracle(features.arraySync(), labels, 1, 0.5);
    expectClose(scalar(details.levels[1].rawLoss), withDenominator, { rtol: 1e-5 }, 'fine level');
    // dropping sample 2 entirely would change the fine level (it is in the denominators)
    const without = levelOracle(
      features.arraySync().filter((_, i) => i !== 2),
      labels.filter((_, i) => i !== 2),
      1,
      0.5,
    );
    assert.ok(Math.abs(withDenominator - without) > 1e-3);
    tf.dispose(features);
  });

  it('reference mode never forms a level from the finest column, so hiding it changes nothing', () => {
    fc.assert(
      // two views or more: a level left with one sample then still has a contrast set
      fc.property(batchArb, fc.integer({ min: 2, max: 3 }), (drawn, v) => {
        const b = { ...drawn, v };
        const { features, labels, hidden } = draw(b);
        tf.tidy(() => {
          const f = tf.tensor3d(features);
          const opts = { temperature: b.temperature, mode: 'reference' as const };
          assert.equal(
            scalar(hiMulConLossDetails(f, hidden, opts).loss),
            scalar(hiMulConLossDetails(f, labels, opts).loss),
          );
        });
      }),
      { ...RUNS, numRuns: 10 },
    );
  });

  it('rows that know no level at all only sit in the denominators', () => {
    const features = tf.tensor3d([
      [
        [1, 0],
        [0.9, 0.1],
      ],
      [
        [0, 1],
        [0.1, 0.9],
      ],
      [
        [0.7, 0.7],
        [0.6, 0.8],
      ],
    ]);
    const details = hiMulConLossDetails(
      features,
      [
        [0, 0],
        [0, 0],
        [UNKNOWN_LABEL, UNKNOWN_LABEL],
      ],
      {
        variant: 'hmc',
      },
    );
    assert.deepEqual(
      details.levels.map((l) => [l.numKnown, l.numAnchorsCounted]),
      [
        [2, 4],
        [2, 4],
      ],
    );
    tf.dispose(features);
  });

  it('an unlabelled row still gets a gradient through the denominators, and it agrees with finite differences', () => {
    const rng = new Rng(9);
    const values = Array.from({ length: 4 * 2 * 3 }, () => rng.normal());
    const labels = [
      [0, 0],
      [0, 0],
      [0, UNKNOWN_LABEL],
      [UNKNOWN_LABEL, UNKNOWN_LABEL],
    ];
    const loss = (x: tf.Tensor) =>
      hiMulConLossDetails(x, labels, { temperature: 0.5, variant: 'hmc', checkFinite: false }).loss;
    const f = tf.tensor3d(values, [4, 2, 3]);
    const grad = tf.grad((x: tf.Tensor) => loss(x))(f);
    const g = Array.from(grad.dataSync());
    assert.ok(g.every(Number.isFinite));
    const unlabelled = g.slice(3 * 2 * 3);
    assert.ok(Math.max(...unlabelled.map(Math.abs)) > 1e-4, 'row 3 is in the denominators');
    const eps = 1e-2;
    const numeric = values.map((_, k) => {
      const shifted = (d: number) => {
        const v = [...values];
        v[k] += d;
        return tf.tidy(() => scalar(loss(tf.tensor3d(v, [4, 2, 3]))));
      };
      return (shifted(eps) - shifted(-eps)) / (2 * eps);
    });
    expectClose(g, numeric, { rtol: 2e-2, atol: 2e-3 }, 'gradient');
    tf.dispose([f, grad]);
  });

  it('rejects a known label below an unknown one, and SupCon rejects -1 naming the remedy', () => {
    const f = tf.ones([2, 2, 3]);
    assert.throws(
      () =>
        hiMulConLossDetails(f, [
          [0, UNKNOWN_LABEL, 2],
          [0, 1, 2],
        ]),
      (e: unknown) =>
        e instanceof ContrastiveError &&
        /labels row 0 must mark unknown levels only below a known prefix \(-1 at column 1.*labels\[0,2\] is 2/.test(
          e.message,
        ),
    );
    assert.throws(
      () => supConLoss(f, [0, UNKNOWN_LABEL]),
      (e: unknown) =>
        e instanceof ContrastiveError &&
        /labels\[1\] is -1 \(an unknown level\).*finestCommonLevel/.test(e.message),
    );
    f.dispose();
  });
});

it('finestCommonLevel takes the finest level every row knows, or says there is none', () => {
  const common = finestCommonLevel('test', [
    [0, 1, 4],
    [0, 2, UNKNOWN_LABEL],
    [1, 3, 5],
  ]);
  assert.equal(common.level, 1);
  assert.deepEqual(Array.from(common.labels), [1, 2, 3]);
  assert.deepEqual(
    Array.from(
      finestCommonLevel('test', [
        [0, 1],
        [2, 3],
      ]).labels,
    ),
    [1, 3],
  );
  assert.throws(
    () =>
      finestCommonLevel('trainer', [
        [0, 1],
        [UNKNOWN_LABEL, UNKNOWN_LABEL],
      ]),
    (e: unknown) => e instanceof ContrastiveError && /trainer: .*labels row 1 knows no level/.test(e.message),
  );
});
