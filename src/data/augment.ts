import * as tf from '@tensorflow/tfjs-core';
import { check, shapeString } from '../errors.js';
import type { Rng } from '../random.js';

/** Options of {@link augmentImages}; every strength 0 (or `false`) turns that transform off. */
export interface ImageAugmentOptions {
  /** Random resized crop: the crop covers `[minScale, 1]` of the image area. Default 0.6. */
  minScale?: number;
  /** Crop aspect ratio range `[1/r, r]`. Default 4/3. */
  maxAspect?: number;
  /** Horizontal flip with probability 0.5. Default true. */
  flip?: boolean;
  /** Brightness shift `±brightness` and contrast factor `1 ± contrast`. Defaults 0.2 and 0.2. */
  brightness?: number;
  contrast?: number;
  /** Standard deviation of additive Gaussian noise. Default 0.02. */
  noise?: number;
  /** Side of a random square set to 0, as a fraction of the image side (0: off). Default 0.25. */
  cutout?: number;
}

/** The defaults for 28×28 grey images (Fashion-MNIST). */
export const DEFAULT_IMAGE_AUGMENT: Required<ImageAugmentOptions> = {
  minScale: 0.6,
  maxAspect: 4 / 3,
  flip: true,
  brightness: 0.2,
  contrast: 0.2,
  noise: 0.02,
  cutout: 0.25,
};

/**
 * One random augmentation of every image of a batch `[N, H, W, C]` (values in [0, 1]): random
 * resized crop and horizontal flip in one `cropAndResize`, brightness/contrast jitter, Gaussian
 * noise and cutout. All randomness is drawn from `rng` in JavaScript, so a seed fixes the views
 * on every backend.
 */
export function augmentImages(images: tf.Tensor4D, rng: Rng, options: ImageAugmentOptions = {}): tf.Tensor4D {
  check(
    images.rank === 4,
    () => `augmentImages: images must be [N, H, W, C], but got shape ${shapeString(images.shape)}.`,
  );
  const o = { ...DEFAULT_IMAGE_AUGMENT, ...options };
  const [n, h, w, c] = images.shape;
  return tf.tidy(() => {
    // crop boxes [y1, x1, y2, x2] in [0, 1]; a flip swaps x1 and x2
    const boxes = new Float32Array(n * 4);
    for (let i = 0; i < n; i++) {
      const scale = o.minScale >= 1 ? 1 : o.minScale + (1 - o.minScale) * rng.next();
      const logAspect = Math.log(o.maxAspect) * (2 * rng.next() - 1);
      const bh = Math.min(1, Math.sqrt(scale / Math.exp(logAspect)));
      const bw = Math.min(1, Math.sqrt(scale * Math.exp(logAspect)));
      const y1 = (1 - bh) * rng.next();
      const x1 = (1 - bw) * rng.next();
      const flip = o.flip && rng.next() < 0.5;
      boxes.set(flip ? [y1, x1 + bw, y1 + bh, x1] : [y1, x1, y1 + bh, x1 + bw], i * 4);
    }
    let x = tf.image.cropAndResize(
      images,
      tf.tensor2d(boxes, [n, 4]),
      tf.tensor1d(
        Int32Array.from({ length: n }, (_, i) => i),
        'int32',
      ),
      [h, w],
    ) as tf.Tensor4D;
    if (o.brightness > 0 || o.contrast > 0) {
      const gain = Float32Array.from({ length: n }, () => 1 + o.contrast * (2 * rng.next() - 1));
      const shift = Float32Array.from({ length: n }, () => o.brightness * (2 * rng.next() - 1));
      const mean = tf.mean(x, [1, 2, 3], true);
      // contrast around each image's mean, then brightness
      x = tf.add(
        tf.add(tf.mul(tf.sub(x, mean), tf.tensor4d(gain, [n, 1, 1, 1])), mean),
        tf.tensor4d(shift, [n, 1, 1, 1]),
      );
    }
    if (o.noise > 0) {
      x = tf.add(
        x,
        tf.tensor4d(
          Float32Array.from({ length: n * h * w * c }, () => o.noise * rng.normal()),
          [n, h, w, c],
        ),
      );
    }
    if (o.cutout > 0) {
      const mask = new Float32Array(n * h * w).fill(1);
      const side = Math.max(1, Math.round(o.cutout * Math.min(h, w)));
      for (let i = 0; i < n; i++) {
        const cy = rng.int(h);
        const cx = rng.int(w);
        for (let y = Math.max(0, cy - (side >> 1)); y < Math.min(h, cy - (side >> 1) + side); y++) {
          for (let xx = Math.max(0, cx - (side >> 1)); xx < Math.min(w, cx - (side >> 1) + side); xx++)
            mask[(i * h + y) * w + xx] = 0;
        }
      }
      x = tf.mul(x, tf.tensor4d(mask, [n, h, w, 1]));
    }
    return tf.clipByValue(x, 0, 1);
  });
}

/** Options of {@link augmentFeatures}. */
export interface FeatureAugmentOptions {
  /** Standard deviation of Gaussian noise, relative to each feature's scale. Default 0.1. */
  noise?: number;
  /** Probability of zeroing each feature. Default 0.1. */
  dropout?: number;
}

/** One random augmentation of feature vectors `[N, D]`: Gaussian noise and feature dropout. */
export function augmentFeatures(x: tf.Tensor2D, rng: Rng, options: FeatureAugmentOptions = {}): tf.Tensor2D {
  const noise = options.noise ?? 0.1;
  const dropout = options.dropout ?? 0.1;
  const [n, d] = x.shape;
  return tf.tidy(() => {
    let y: tf.Tensor2D = x;
    if (noise > 0) {
      const scale = tf.add(tf.sqrt(tf.moments(x, 0).variance), 1e-6);
      y = tf.add(
        y,
        tf.mul(
          tf.tensor2d(
            Float32Array.from({ length: n * d }, () => noise * rng.normal()),
            [n, d],
          ),
          scale,
        ),
      );
    }
    if (dropout > 0) {
      y = tf.mul(
        y,
        tf.tensor2d(
          Float32Array.from({ length: n * d }, () => (rng.next() < dropout ? 0 : 1)),
          [n, d],
        ),
      );
    }
    return y;
  });
}

/**
 * V augmented views of a batch `[N, ...]`, stacked as `[N, V, ...]` (the layout the losses take;
 * `tf.reshape` to `[N*V, ...]` after a transpose for the flat view-major one).
 */
export function views<T extends tf.Tensor>(x: T, numViews: number, augment: (x: T) => T): tf.Tensor {
  return tf.tidy(() =>
    tf.stack(
      Array.from({ length: numViews }, () => augment(x)),
      1,
    ),
  );
}
