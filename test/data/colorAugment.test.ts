import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { type ColorAugmentOptions, colorAugment, measureChannelStats } from '../../src/data/colorAugment.js';
import { ContrastiveError } from '../../src/errors.js';
import { Rng } from '../../src/random.js';
import { expectClose, forEachBackend } from '../helpers/backends.js';

/** Only the named transforms on: a crop of the whole image, no flip, no jitter, no grey. */
const OFF: ColorAugmentOptions = {
  scale: [1, 1],
  ratio: [1, 1],
  flip: 0,
  jitter: false,
  greyscale: 0,
  blur: false,
};

/** `[n, h, w, 3]` colour images with values in [0.2, 0.8] (jitter then rarely clips). */
function colourBatch(seed: number, n = 4, h = 8, w = 8): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(
    Float32Array.from({ length: n * h * w * 3 }, () => 0.2 + 0.6 * rng.next()),
    [n, h, w, 3],
  );
}

const pixels = (x: tf.Tensor) => Array.from(x.dataSync());

forEachBackend('colour augmentations', () => {
  it('are seeded: the same seed gives the same views, another seed others; values stay in [0, 1]', () => {
    const x = colourBatch(1);
    const options: ColorAugmentOptions = { outputSize: [6, 6], blur: { probability: 0.5 } };
    const a = colorAugment(x, new Rng(5), options);
    const b = colorAugment(x, new Rng(5), options);
    const c = colorAugment(x, new Rng(6), options);
    assert.deepEqual(a.shape, [4, 6, 6, 3]);
    assert.deepEqual(pixels(a), pixels(b));
    assert.notDeepEqual(pixels(a), pixels(c));
    for (const v of pixels(a)) assert.ok(v >= 0 && v <= 1, `value ${v} outside [0, 1]`);
    tf.dispose([x, a, b, c]);
  });

  it('the whole-image crop is the identity and a certain flip mirrors every row', () => {
    const x = colourBatch(2);
    expectClose(pixels(colorAugment(x, new Rng(1), OFF)), pixels(x), { atol: 1e-6 }, 'identity');
    const flipped = colorAugment(x, new Rng(1), { ...OFF, flip: 1 });
    expectClose(pixels(flipped), pixels(tf.reverse(x, 2)), { atol: 1e-6 }, 'flip');
    tf.dispose([x, flipped]);
  });

  it('a random resized crop of a quarter of the area spans half of a horizontal ramp', () => {
    const ramp = tf.tidy(() =>
      tf.tile(tf.reshape(tf.linspace(0, 1, 16), [1, 1, 16, 1]), [3, 16, 1, 3]),
    ) as tf.Tensor4D;
    const out = colorAugment(ramp, new Rng(3), { ...OFF, scale: [0.25, 0.25] });
    const data = out.arraySync();
    for (const image of data) {
      const row = image[0].map((p) => p[0]);
      expectClose(row[15] - row[0], 0.5, { atol: 0.08 }, 'crop span');
    }
    tf.dispose([ramp, out]);
  });

  it('brightness scales each image by one factor within its range; contrast keeps the mean grey', () => {
    const x = colourBatch(3);
    const jitterOnly = (j: object) => ({
      ...OFF,
      jitter: { brightness: 0, contrast: 0, saturation: 0, hue: 0, probability: 1, ...j },
    });
    const bright = colorAugment(x, new Rng(4), jitterOnly({ brightness: 0.2 }));
    const ratio = (tf.div(bright, x) as tf.Tensor4D).arraySync();
    for (const image of ratio) {
      const values = image.flat(2);
      const f = values[0];
      assert.ok(f >= 0.8 && f <= 1.2, `factor ${f}`);
      expectClose(
        values,
        values.map(() => f),
        { rtol: 1e-4 },
        'one factor per image',
      );
    }
    assert.ok(
      ratio.some((image) => Math.abs(image[0][0][0] - 1) > 1e-3),
      'some image changed',
    );
    const contrast = colorAugment(x, new Rng(4), jitterOnly({ contrast: 0.3 }));
    const greyMean = (t: tf.Tensor) =>
      pixels(tf.mean(tf.sum(tf.mul(t, tf.tensor1d([0.299, 0.587, 0.114])), -1), [1, 2]));
    expectClose(greyMean(contrast), greyMean(x), { atol: 1e-5 }, 'mean grey');
    assert.notDeepEqual(pixels(contrast), pixels(x));
    tf.dispose([x, bright, contrast]);
  });

  it('saturation and hue leave grey pixels grey; hue keeps the luma and changes the colour', () => {
    const grey = tf.tile(tf.tensor4d([0.3, 0.5, 0.7, 0.4], [4, 1, 1, 1]), [1, 4, 4, 3]) as tf.Tensor4D;
    const jitter = { brightness: 0, contrast: 0, saturation: 0.9, hue: 0.5, probability: 1 };
    expectClose(
      pixels(colorAugment(grey, new Rng(2), { ...OFF, jitter })),
      pixels(grey),
      { atol: 1e-5 },
      'grey stays',
    );
    const x = tf.tile(tf.tensor4d([0.6, 0.45, 0.4], [1, 1, 1, 3]), [4, 2, 2, 1]) as tf.Tensor4D;
    const hued = colorAugment(x, new Rng(2), { ...OFF, jitter: { ...jitter, saturation: 0, hue: 0.1 } });
    const luma = (t: tf.Tensor) => pixels(tf.sum(tf.mul(t, tf.tensor1d([0.299, 0.587, 0.114])), -1));
    expectClose(luma(hued), luma(x), { atol: 1e-4 }, 'luma');
    assert.ok(Math.max(...pixels(tf.abs(tf.sub(hued, x)))) > 0.01, 'colour changed');
    tf.dispose([grey, x, hued]);
  });

  it('greyscale makes the three channels equal; blur smooths a checkerboard and keeps a flat image', () => {
    const x = colourBatch(4);
    const g = colorAugment(x, new Rng(1), { ...OFF, greyscale: 1 }).arraySync();
    for (const p of g.flat(2)) {
      assert.ok(Math.abs(p[0] - p[1]) < 1e-6 && Math.abs(p[1] - p[2]) < 1e-6);
    }
    const checker = tf.tensor4d(
      Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, k) => {
        const pixel = Math.floor(k / 3);
        return ((pixel % 8) + Math.floor(pixel / 8)) % 2;
      }),
      [2, 8, 8, 3],
    );
    const blurred = colorAugment(checker, new Rng(1), {
      ...OFF,
      blur: { probability: 1, sigma: [1, 1.5], kernelSize: 5 },
    });
    const variance = (t: tf.Tensor) => tf.moments(t).variance.dataSync()[0];
    assert.ok(variance(blurred) < 0.25 * variance(checker), 'blur lowers the variance');
    const flat = tf.fill([1, 8, 8, 3], 0.4) as tf.Tensor4D;
    const flatBlurred = colorAugment(flat, new Rng(1), { ...OFF, blur: { probability: 1, kernelSize: 5 } });
    expectClose(pixels(flatBlurred), pixels(flat), { atol: 1e-6 }, 'flat');
    tf.dispose([x, checker, blurred, flat, flatBlurred]);
  });

  it('normalises per channel with measured statistics; bad options are errors', () => {
    const x = colourBatch(5);
    const stats = measureChannelStats(x.dataSync(), 3);
    const out = colorAugment(x, new Rng(1), { ...OFF, normalize: stats });
    const moments = tf.moments(out, [0, 1, 2]);
    expectClose(pixels(moments.mean), [0, 0, 0], { atol: 1e-5 }, 'mean');
    expectClose(pixels(tf.sqrt(moments.variance)), [1, 1, 1], { atol: 1e-4 }, 'std');
    const fails = (options: ColorAugmentOptions, pattern: RegExp) =>
      assert.throws(
        () => colorAugment(x, new Rng(1), options),
        (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message),
      );
    fails({ outputSize: [16, 16] }, /outputSize must be at most the image size \[8, 8\].*but got \[16, 16\]/);
    fails({ scale: [0.5, 0.2] }, /scale must be \[min, max\] with 0 < min <= max <= 1, but got \[0.5,0.2\]/);
    fails({ normalize: { mean: [0], std: [1] } }, /normalize must give 3 means/);
    fails({ jitter: { hue: 0.7 } }, /jitter.hue must be a number in \[0, 0.5\]/);
    tf.dispose([x, out]);
  });

  it('leaves no tensors behind', () => {
    const x = colourBatch(6);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) colorAugment(x, new Rng(i), { blur: {} }).dispose();
    assert.equal(tf.memory().numTensors, before);
    x.dispose();
  });
});

it('the flag table turns into colorAugment options (SimCLR defaults) and checks its values', async () => {
  const { COLOR_AUGMENT_OPTIONS, DATA_OPTIONS, colorAugmentOptionsFrom } = await import(
    '../../src/data/dataOptions.js'
  );
  const names = [...DATA_OPTIONS, ...COLOR_AUGMENT_OPTIONS].map((o) => o.name);
  assert.equal(new Set(names).size, names.length, 'option names are unique');
  const defaults = colorAugmentOptionsFrom({}, 64);
  assert.deepEqual(defaults.outputSize, [64, 64]);
  assert.deepEqual(defaults.scale, [0.08, 1]);
  assert.deepEqual(defaults.jitter, {
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.4,
    hue: 0.1,
    probability: 0.8,
  });
  assert.equal(defaults.blur, false);
  const custom = colorAugmentOptionsFrom(
    {
      cropSize: 48,
      cropScale: '0.2,1',
      jitterProbability: 0,
      normalize: 'given',
      channelMean: ['0.5', '0.4', '0.3'],
      channelStd: ['0.2', '0.2', '0.2'],
    },
    64,
  );
  assert.deepEqual(custom.outputSize, [48, 48]);
  assert.deepEqual(custom.scale, [0.2, 1]);
  assert.equal(custom.jitter, false);
  assert.deepEqual(custom.normalize, { mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2] });
  assert.throws(
    () => colorAugmentOptionsFrom({ cropScale: '0.2' }, 64),
    (e: unknown) =>
      e instanceof ContrastiveError && /--crop-scale must be two numbers min,max, but got 1/.test(e.message),
  );
  assert.throws(
    () => colorAugmentOptionsFrom({ normalize: 'measure' }, 64),
    (e: unknown) => e instanceof ContrastiveError && /--normalize measure needs/.test(e.message),
  );
});
