/**
 * Every case of the shared golden fixtures, on every test backend, with and without
 * normalisation: the loss, the gradient w.r.t. the features, and each loss's extra fields.
 *
 * Tolerances (float32 against float64 goldens), as the fixture README suggests:
 * loss `|l - e| <= 1e-5·max(1, |e|)`; gradient element `|g - e| <= 1e-5·max(0.1, max|e|)`.
 * The fixtures' own float32 PyTorch run stays within 4e-7 / 1.6e-6, so 1e-5 leaves room for
 * a different summation order on each backend without hiding a wrong formula (a formula error
 * shows up at 1e-2 or worse).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  hiMulConLossDetails,
  infoNCELoss,
  momentumMixup,
  ntXentLoss,
  refineLabels,
  saneLossDetails,
  supConLossDetails,
} from '../../src/index.js';
import type { HiMulConVariant } from '../../src/losses/hiMulCon.js';
import { expectClose, flat, forEachBackend } from '../helpers/backends.js';
import { type GoldenCase, loadGoldens } from '../helpers/fixtures.js';

const LOSS_RTOL = 1e-5;
const GRAD_RTOL = 1e-5;

function checkLoss(actual: tf.Scalar | number, expected: unknown, label: string): void {
  const e = expected as number;
  const a = typeof actual === 'number' ? actual : actual.dataSync()[0];
  expectClose(a, e, { rtol: 0, atol: LOSS_RTOL * Math.max(1, Math.abs(e)) }, label);
}

function checkGrad(actual: tf.Tensor, expected: unknown, label: string): void {
  const e = flat(expected);
  const scale = Math.max(0.1, ...e.map(Math.abs));
  assert.deepEqual(
    actual.shape.reduce((p, d) => p * d, 1),
    e.length,
    `${label}: size`,
  );
  expectClose(actual.dataSync(), e, { rtol: 0, atol: GRAD_RTOL * scale }, label);
}

const t = (x: unknown) => tf.tensor(x as number[]);

/** Runs one case with `normalize` and checks everything the expected block holds. */
function runCase(c: GoldenCase, normalize: boolean): void {
  const exp = normalize ? c.expected : c.expected_unnormalized;
  const p = c.params;
  const inp = c.inputs;
  const temperature = p.temperature as number;
  tf.tidy(() => {
    switch (c.loss) {
      case 'ntxent': {
        const f = t(inp.features);
        const opts = { temperature, normalize };
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => ntXentLoss(x, opts))(f);
        checkLoss(value as tf.Scalar, exp.loss, 'loss');
        checkGrad(grad, (exp.grad as Record<string, unknown>).features, 'grad');
        const flatFeatures = t(inp.features_flat);
        const flatResult = tf.valueAndGrad((x: tf.Tensor) => ntXentLoss(x, opts))(flatFeatures);
        checkLoss(flatResult.value as tf.Scalar, exp.loss, 'loss (flat layout)');
        checkGrad(flatResult.grad, (exp.grad as Record<string, unknown>).features_flat, 'grad (flat layout)');
        if (exp.closed_form !== undefined) {
          // 'log(2N-1) = log(7)': every row identical, so every logit is equal
          checkLoss(value as tf.Scalar, Math.log(2 * f.shape[0] - 1), 'closed form log(2N-1)');
        }
        break;
      }
      case 'supcon': {
        const second = (inp.labels ?? inp.mask) as number[];
        const opts = {
          temperature,
          baseTemperature: p.base_temperature as number,
          contrastMode: p.contrast_mode as 'all' | 'one',
          normalize,
        };
        const f = t(inp.features);
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => supConLossDetails(x, second, opts).loss)(f);
        checkLoss(value as tf.Scalar, exp.loss, 'loss');
        checkGrad(grad, (exp.grad as Record<string, unknown>).features, 'grad');
        const details = supConLossDetails(f, second, opts);
        assert.deepEqual(
          Array.from(details.numPositives),
          exp.num_positives_per_anchor,
          'num_positives_per_anchor',
        );
        const perAnchor = details.perAnchorLoss.dataSync();
        (exp.per_anchor_loss as (number | null)[]).forEach((e, i) => {
          checkLoss(perAnchor[i], e ?? 0, `per_anchor_loss[${i}]`);
        });
        break;
      }
      case 'hmlc_paper': {
        const variants: Record<string, HiMulConVariant> = {
          himulcon: 'hmc',
          hicone: 'hce',
          himulcone: 'hmce',
        };
        const opts = {
          temperature,
          variant: variants[p.variant as string],
          levelWeights: p.lambdas as number[],
          mode: 'paper' as const,
          normalize,
        };
        const f = t(inp.features);
        const labels = inp.labels as number[][];
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => hiMulConLossDetails(x, labels, opts).loss)(
          f,
        );
        checkLoss(value as tf.Scalar, exp.loss, 'loss');
        checkGrad(grad, (exp.grad as Record<string, unknown>).features, 'grad');
        const { levels } = hiMulConLossDetails(f, labels, opts);
        levels.forEach((level, c) => {
          checkLoss(level.rawLoss, (exp.level_losses as number[])[c], `level_losses[${c}]`);
          checkLoss(level.usedLoss, (exp.level_losses_used as number[])[c], `level_losses_used[${c}]`);
        });
        break;
      }
      case 'hmlc_reference': {
        const opts = {
          temperature,
          variant: p.loss_type as HiMulConVariant,
          levelWeights: p.layer_penalty as 'pow2' | 'exp',
          mode: 'reference' as const,
          normalize,
        };
        const f = t(inp.features);
        const labels = inp.labels as number[][];
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => hiMulConLossDetails(x, labels, opts).loss)(
          f,
        );
        checkLoss(value as tf.Scalar, exp.loss, 'loss');
        checkGrad(grad, (exp.grad as Record<string, unknown>).features, 'grad');
        // the same weights given explicitly, coarsest first
        const explicit = { ...opts, levelWeights: [...(p.lambdas_by_l as number[])].reverse() };
        checkLoss(hiMulConLossDetails(f, labels, explicit).loss, exp.loss, 'loss (explicit levelWeights)');
        const { levels } = hiMulConLossDetails(f, labels, opts);
        const numColumns = labels[0].length;
        for (const e of exp.levels as {
          l: number;
          columns: number[];
          sample_indices: number[];
          raw_loss: number;
          used_loss: number;
          weight: number;
        }[]) {
          const level = levels[numColumns - 1 - e.l];
          assert.equal(level.column, e.columns[e.columns.length - 1], `level l=${e.l} columns`);
          assert.deepEqual(
            Array.from(level.sampleIndices),
            e.sample_indices,
            `level l=${e.l} sample_indices`,
          );
          checkLoss(level.rawLoss, e.raw_loss, `level l=${e.l} raw_loss`);
          checkLoss(level.usedLoss, e.used_loss, `level l=${e.l} used_loss`);
          if (opts.variant !== 'hce')
            expectClose(level.weight, e.weight, { rtol: 1e-12 }, `level l=${e.l} weight`);
        }
        break;
      }
      case 'moco': {
        const [q, k, queue] = [t(inp.queries), t(inp.keys), t(inp.queue)];
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) =>
          infoNCELoss(x, k, queue, { temperature, normalize }),
        )(q);
        checkLoss(value as tf.Scalar, exp.loss, 'loss');
        checkGrad(grad, (exp.grad as Record<string, unknown>).queries, 'grad');
        break;
      }
      case 'sane': {
        const [q, k, queue, mq] = [t(inp.queries), t(inp.keys), t(inp.queue), t(inp.mixed_queries)];
        const refinery = {
          temperature,
          tauPrime: p.tau_prime as number,
          alpha: p.alpha as number,
          beta: p.beta as number,
          normalize,
        };
        const labels = refineLabels(k, queue, refinery);
        expectClose(labels.p.dataSync(), flat(exp.p), { rtol: 1e-5, atol: 1e-7 }, 'p');
        expectClose(labels.q.dataSync(), flat(exp.q), { rtol: 1e-5, atol: 1e-7 }, 'q');
        expectClose(labels.targets.dataSync(), flat(exp.ybar), { rtol: 1e-5, atol: 1e-7 }, 'ybar');
        const mixup = { theta: p.theta as number, permutation: p.perm as number[] };
        const expMixup = exp.mixup as Record<string, unknown>;
        const mixed = momentumMixup(t(inp.x_query), t(inp.x_key), labels.targets, mixup);
        expectClose(
          mixed.mixedInputs.dataSync(),
          flat(expMixup.x_mixed),
          { rtol: 1e-5, atol: 1e-7 },
          'x_mixed',
        );
        expectClose(
          mixed.mixedTargets.dataSync(),
          flat(expMixup.y_mixed),
          { rtol: 1e-5, atol: 1e-7 },
          'y_mixed',
        );

        const clean = tf.valueAndGrad((x: tf.Tensor) => saneLossDetails(x, k, queue, refinery).loss)(q);
        checkLoss(clean.value as tf.Scalar, exp.loss, 'loss');
        checkGrad(clean.grad, (exp.grad as Record<string, unknown>).queries, 'grad');
        const withMixup = (x: tf.Tensor) =>
          saneLossDetails(q, k, queue, { ...refinery, mixedQueries: x, mixup }).mixupLoss;
        const mixedResult = tf.valueAndGrad(withMixup)(mq);
        checkLoss(mixedResult.value as tf.Scalar, expMixup.loss, 'mixup loss');
        checkGrad(mixedResult.grad, (expMixup.grad as Record<string, unknown>).mixed_queries, 'mixup grad');
        const both = saneLossDetails(q, k, queue, { ...refinery, mixedQueries: mq, mixup, mixupWeight: 0.5 });
        checkLoss(both.loss, (exp.loss as number) + 0.5 * (expMixup.loss as number), 'loss with mixup');
        break;
      }
      default:
        assert.fail(`unknown loss ${c.loss} in the fixtures`);
    }
  });
}

forEachBackend('golden fixtures', () => {
  const cases = loadGoldens();
  it('covers every loss family of SPEC.md', () => {
    const families = new Set(cases.map((c) => c.loss));
    assert.deepEqual([...families].sort(), [
      'hmlc_paper',
      'hmlc_reference',
      'moco',
      'ntxent',
      'sane',
      'supcon',
    ]);
  });
  for (const c of cases) {
    for (const normalize of [true, false]) {
      it(`${c.id} (normalize: ${normalize})`, () => runCase(c, normalize));
    }
  }
});
