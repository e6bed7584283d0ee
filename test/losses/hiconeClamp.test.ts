/** HiConE's clamp activity: where the max over finer level losses takes a finer level's value. */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../../src/engine/backend.js';
import { hiConEClampBinds, hiMulConLoss, hiMulConLossDetails } from '../../src/index.js';
import { loadRun } from '../../src/report/index.js';
import { train } from '../../src/run/train.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

const e = (i: number, d = 4) => Array.from({ length: d }, (_, k) => (k === i ? 1 : 0));

/**
 * Two samples of one coarse class, two fine classes; each sample's two views point different
 * ways while the other sample's first view matches its own: the fine level (own other view only)
 * costs more than the coarse level (which also counts the matching view) — the clamp binds at L0.
 */
const finerCostsMore = () => ({
  features: tf.tensor3d([
    [e(0), e(1)],
    [e(0), e(1)],
  ]),
  labels: [
    [0, 0],
    [0, 1],
  ],
});

/** Four orthogonal samples, views equal, two per coarse class: the fine level costs less. */
const finerCostsLess = () => ({
  features: tf.tensor3d([0, 1, 2, 3].map((i) => [e(i), e(i)])),
  labels: [
    [0, 0],
    [0, 1],
    [1, 2],
    [1, 3],
  ],
});

const levelValues = (details: ReturnType<typeof hiMulConLossDetails>, key: 'rawLoss' | 'usedLoss') =>
  details.levels.map((l) => l[key].dataSync()[0]);

describe('HiConE clamp activity', () => {
  before(() => useBackend('wasm'));
  it('binds where a finer level costs more, never at the finest level, and not where it costs less', () => {
    const more = finerCostsMore();
    const details = hiMulConLossDetails(more.features, more.labels, { variant: 'hce' });
    const raw = levelValues(details, 'rawLoss');
    assert.ok(raw[1] > raw[0], `fine ${raw[1]} should exceed coarse ${raw[0]}`);
    assert.deepEqual(hiConEClampBinds(raw), [true, false]);
    // where it binds, the used loss is the finer level's: what the loss itself computed
    assert.deepEqual(levelValues(details, 'usedLoss'), [raw[1], raw[1]]);

    const less = finerCostsLess();
    const rawLess = levelValues(
      hiMulConLossDetails(less.features, less.labels, { variant: 'hce' }),
      'rawLoss',
    );
    assert.ok(rawLess[1] < rawLess[0]);
    assert.deepEqual(hiConEClampBinds(rawLess), [false, false]);
    // ties do not bind; a running max over several finer levels does
    assert.deepEqual(hiConEClampBinds([2, 2]), [false, false]);
    assert.deepEqual(hiConEClampBinds([1, 3, 2, 5]), [true, true, true, false]);
  });

  it('agrees with the used losses of every variant and leaves the loss and its gradient as they were', () => {
    for (const make of [finerCostsMore, finerCostsLess]) {
      const { features, labels } = make();
      for (const variant of ['hce', 'hmce'] as const) {
        const details = hiMulConLossDetails(features, labels, { variant });
        const raw = levelValues(details, 'rawLoss');
        const used = levelValues(details, 'usedLoss');
        const binds = hiConEClampBinds(raw);
        assert.deepEqual(
          binds,
          used.map((u, l) => u !== raw[l]),
        );
        // the loss is the weighted mean of the used losses, as before
        const expected =
          details.levels.reduce((sum, level, l) => sum + level.weight * used[l], 0) / details.levels.length;
        assert.ok(Math.abs(details.loss.dataSync()[0] - expected) < 1e-5);
        // computing the activity does not touch the loss's graph: same value, same gradient
        const grad = (f: tf.Tensor) => tf.grad((x: tf.Tensor) => hiMulConLoss(x, labels, { variant }))(f);
        const before = grad(features).arraySync();
        hiConEClampBinds(raw);
        assert.deepEqual(grad(features).arraySync(), before);
      }
    }
  });

  describe('in training', () => {
    let dir: string;
    before(async () => {
      dir = await tempRuns();
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('hicone and himulcone log hiconeClampBinds per level for every logged step; himulcon does not', async () => {
      for (const method of ['hicone', 'himulcone', 'himulcon'] as const) {
        const out = join(dir, method);
        await train(
          await smallConfig(out, { method, epochs: 1, trainLimit: 256, logEvery: 2, evalEvery: 0 }),
          {
            progress: quietProgress(),
          },
        );
        const steps = (await loadRun(out)).history.filter((m) => m.kind === 'step');
        assert.ok(steps.length >= 2);
        for (const step of steps) {
          if (method === 'himulcon') {
            assert.equal(step.hiconeClampBinds, undefined);
            continue;
          }
          const binds = step.hiconeClampBinds as number[];
          assert.equal(binds.length, 3);
          assert.ok(binds.every((b) => b >= 0 && b <= 1));
          assert.equal(binds[2], 0, 'the finest level never binds');
        }
      }
    });
  });
});
