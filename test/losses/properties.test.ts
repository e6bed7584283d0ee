/**
 * Invariants of the losses, checked with fast-check on random small batches (fixed seeds, so a
 * failure reproduces and nothing fails by luck).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { hiMulConLossDetails, infoNCELoss, ntXentLoss, Rng, saneLoss, supConLoss } from '../../src/index.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

const RUNS = { seed: 20261123, numRuns: 20 };

/** Batch shape and label-tree size drawn by fast-check; the numbers themselves come from an Rng. */
const batchArb = fc.record({
  n: fc.integer({ min: 2, max: 9 }),
  v: fc.integer({ min: 2, max: 3 }),
  d: fc.integer({ min: 2, max: 6 }),
  levels: fc.integer({ min: 1, max: 3 }),
  branching: fc.integer({ min: 1, max: 3 }),
  temperature: fc.constantFrom(0.05, 0.1, 0.5, 1),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});
type Batch = {
  n: number;
  v: number;
  d: number;
  levels: number;
  branching: number;
  temperature: number;
  seed: number;
};

function randomFeatures(rng: Rng, shape: number[]): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, () => rng.normal()),
    shape,
  );
}

/** `[N, L]` label paths: each level picks one of `branching` children of the previous level. */
function randomLabelPaths(rng: Rng, n: number, levels: number, branching: number): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: levels }, () => rng.int(branching)));
}

function value(x: tf.Scalar): number {
  const v = x.dataSync()[0];
  x.dispose();
  return v;
}

const close = (a: number, b: number, label: string) => expectClose(a, b, { rtol: 2e-5, atol: 2e-5 }, label);

forEachBackend('loss properties', () => {
  it('every SupCon-family loss is invariant to permuting the batch', () => {
    fc.assert(
      fc.property(batchArb, (b: Batch) => {
        const rng = new Rng(b.seed);
        const labels = randomLabelPaths(rng, b.n, b.levels, b.branching);
        const perm = Array.from(rng.permutation(b.n));
        tf.tidy(() => {
          const f = randomFeatures(rng, [b.n, b.v, b.d]);
          const fp = tf.gather(f, perm);
          const lp = perm.map((i) => labels[i]);
          const fine = labels.map((row) => row[row.length - 1]);
          const opts = { temperature: b.temperature };
          close(
            value(supConLoss(f, fine, opts)),
            value(
              supConLoss(
                fp,
                perm.map((i) => fine[i]),
                opts,
              ),
            ),
            'supCon',
          );
          close(value(ntXentLoss(f, opts)), value(ntXentLoss(fp, opts)), 'ntXent');
          for (const variant of ['hmc', 'hce', 'hmce'] as const) {
            const h = { ...opts, variant };
            close(
              value(hiMulConLossDetails(f, labels, h).loss),
              value(hiMulConLossDetails(fp, lp, h).loss),
              `hiMulCon ${variant}`,
            );
          }
          const [q, k, queue] = [
            randomFeatures(rng, [b.n, b.d]),
            randomFeatures(rng, [b.n, b.d]),
            randomFeatures(rng, [5, b.d]),
          ];
          const [qp, kp] = [tf.gather(q, perm), tf.gather(k, perm)];
          close(value(infoNCELoss(q, k, queue, opts)), value(infoNCELoss(qp, kp, queue, opts)), 'infoNCE');
          const sane = { ...opts, alpha: 0.3, beta: 0.2, tauPrime: 0.5 };
          close(value(saneLoss(q, k, queue, sane)), value(saneLoss(qp, kp, queue, sane)), 'sane');
        });
      }),
      RUNS,
    );
  });

  it('normalised losses are invariant to rescaling each row by a positive factor', () => {
    fc.assert(
      fc.property(batchArb, (b: Batch) => {
        const rng = new Rng(b.seed);
        const labels = randomLabelPaths(rng, b.n, b.levels, b.branching);
        tf.tidy(() => {
          const f = randomFeatures(rng, [b.n, b.v, b.d]);
          const scales = tf.tensor(
            Float32Array.from({ length: b.n * b.v }, () => 0.01 + 100 * rng.next()),
            [b.n, b.v, 1],
          );
          const fs = tf.mul(f, scales);
          const opts = { temperature: b.temperature };
          close(
            value(
              supConLoss(
                f,
                labels.map((r) => r[0]),
                opts,
              ),
            ),
            value(
              supConLoss(
                fs,
                labels.map((r) => r[0]),
                opts,
              ),
            ),
            'supCon',
          );
          close(
            value(hiMulConLossDetails(f, labels, opts).loss),
            value(hiMulConLossDetails(fs, labels, opts).loss),
            'hiMulCon',
          );
          if (b.levels >= 2) {
            const ref = { ...opts, mode: 'reference' as const };
            close(
              value(hiMulConLossDetails(f, labels, ref).loss),
              value(hiMulConLossDetails(fs, labels, ref).loss),
              'reference',
            );
          }
          const [q, k] = [randomFeatures(rng, [b.n, b.d]), randomFeatures(rng, [b.n, b.d])];
          close(
            value(infoNCELoss(q, k, null, opts)),
            value(infoNCELoss(tf.mul(q, 7.5), tf.mul(k, 0.2), null, opts)),
            'infoNCE',
          );
        });
      }),
      RUNS,
    );
  });

  it('HiConE used level losses never decrease from finer to coarser levels', () => {
    fc.assert(
      fc.property(batchArb, fc.constantFrom('paper', 'reference'), (b: Batch, mode) => {
        const levels = Math.max(b.levels, mode === 'reference' ? 3 : 2);
        const rng = new Rng(b.seed);
        const labels = randomLabelPaths(rng, b.n, levels, b.branching + 1);
        tf.tidy(() => {
          const f = randomFeatures(rng, [b.n, b.v, b.d]);
          for (const variant of ['hce', 'hmce'] as const) {
            const details = hiMulConLossDetails(f, labels, { temperature: b.temperature, variant, mode });
            const used = details.levels.map((l) => l.usedLoss.dataSync()[0]);
            for (let c = 0; c + 1 < used.length; c++) {
              assert.ok(
                used[c] >= used[c + 1],
                `${mode} ${variant}: level ${c} used ${used[c]} < finer ${used[c + 1]}`,
              );
            }
          }
        });
      }),
      RUNS,
    );
  });

  it('with one level, HiMulCon equals SupCon', () => {
    fc.assert(
      fc.property(batchArb, (b: Batch) => {
        const rng = new Rng(b.seed);
        const labels = randomLabelPaths(rng, b.n, 1, b.branching + 1);
        tf.tidy(() => {
          const f = randomFeatures(rng, [b.n, b.v, b.d]);
          const opts = { temperature: b.temperature };
          const hmc = hiMulConLossDetails(f, labels, { ...opts, variant: 'hmc', levelWeights: [1] }).loss;
          const sup = supConLoss(
            f,
            labels.map((r) => r[0]),
            { ...opts, baseTemperature: b.temperature },
          );
          close(value(hmc), value(sup), 'hiMulCon vs supCon');
        });
      }),
      RUNS,
    );
  });

  it('with two views and unique labels, SupCon equals NT-Xent, and NT-Xent is symmetric in its views', () => {
    fc.assert(
      fc.property(batchArb, (b: Batch) => {
        const rng = new Rng(b.seed);
        tf.tidy(() => {
          const f = randomFeatures(rng, [b.n, 2, b.d]);
          const opts = { temperature: b.temperature };
          const unique = Array.from({ length: b.n }, (_, i) => 3 * i + 1);
          const nt = value(ntXentLoss(f, opts));
          close(
            value(supConLoss(f, unique, { ...opts, baseTemperature: b.temperature })),
            nt,
            'supCon vs ntXent',
          );
          close(value(ntXentLoss(tf.reverse(f, 1), opts)), nt, 'views swapped');
        });
      }),
      RUNS,
    );
  });

  it('identical features give the closed forms log(2N-1) (NT-Xent) and log(K+1) (InfoNCE)', () => {
    for (const n of [1, 2, 5, 16]) {
      tf.tidy(() => {
        const f = tf.ones([n, 2, 4]);
        // one sample has no negatives: NT-Xent refuses it (test/cli/oneLineErrors.test.ts)
        if (n >= 2) close(value(ntXentLoss(f, { temperature: 0.1 })), Math.log(2 * n - 1), `ntXent N=${n}`);
        const q = tf.ones([n, 4]);
        close(value(infoNCELoss(q, q, tf.ones([7, 4]), { temperature: 0.1 })), Math.log(8), `infoNCE N=${n}`);
      });
    }
  });
});
