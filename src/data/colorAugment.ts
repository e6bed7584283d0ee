import * as tf from '@tensorflow/tfjs-core';
import { check, shapeString } from '../errors.js';
import type { Rng } from '../random.js';

/** Colour jitter of {@link ColorAugmentOptions} (torchvision `ColorJitter` strengths). */
export interface ColorJitterOptions {
  /** Brightness factor drawn from `[1 - b, 1 + b]`. SimCLR: 0.8 × s with s = 0.5 → 0.4. */
  brightness?: number;
  /** Contrast factor from `[1 - c, 1 + c]`, around each image's mean grey level. Default 0.4. */
  contrast?: number;
  /** Saturation factor from `[1 - s, 1 + s]` (0 = grey). Default 0.4. */
  saturation?: number;
  /** Hue shift from `[-h, h]` turns of the colour wheel, at most 0.5. Default 0.1. */
  hue?: number;
  /** Probability that an image is jittered at all. Default 0.8 (SimCLR). */
  probability?: number;
}

/** Gaussian blur of {@link ColorAugmentOptions}. */
export interface BlurOptions {
  /** Probability per image. Default 0.5 (SimCLR on ImageNet). */
  probability?: number;
  /** σ drawn uniformly from `[min, max]` pixels. Default `[0.1, 2]`. */
  sigma?: readonly [number, number];
  /** Odd kernel size in pixels. Default: about a tenth of the image side, at least 3. */
  kernelSize?: number;
}

/** Options of {@link colorAugment}: SimCLR's standard augmentations. `false` turns one off. */
export interface ColorAugmentOptions {
  /** Output `[height, width]` of the random resized crop. Default: the input size. */
  outputSize?: readonly [number, number];
  /** Crop area as a share of the image, `[min, max]`. Default `[0.08, 1]` (torchvision). */
  scale?: readonly [number, number];
  /** Crop aspect ratio (width / height) range. Default `[3/4, 4/3]`. */
  ratio?: readonly [number, number];
  /** Probability of a horizontal flip. Default 0.5. */
  flip?: number;
  /** Colour jitter, or `false`. Default: SimCLR's (0.4, 0.4, 0.4, 0.1) with probability 0.8. */
  jitter?: ColorJitterOptions | false;
  /** Probability of turning an image grey (kept as 3 channels). Default 0.2. */
  greyscale?: number;
  /** Gaussian blur, or `false` (default: off; small images rarely want it). */
  blur?: BlurOptions | false;
  /**
   * Per-channel normalisation `(x - mean) / std`, applied last (see {@link measureChannelStats}),
   * or `false` (default): values stay in [0, 1].
   */
  normalize?: ChannelStats | false;
}

/** Per-channel mean and standard deviation. */
export interface ChannelStats {
  mean: readonly number[];
  std: readonly number[];
}

/** SimCLR's defaults (Chen et al. 2020, appendix A), blur off. */
export const SIMCLR_AUGMENT = {
  scale: [0.08, 1],
  ratio: [3 / 4, 4 / 3],
  flip: 0.5,
  jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, probability: 0.8 },
  greyscale: 0.2,
  blur: false,
  normalize: false,
} as const satisfies ColorAugmentOptions;

// ITU-R BT.601 luma, what torchvision's rgb_to_grayscale uses
const LUMA = [0.299, 0.587, 0.114] as const;
// RGB -> YIQ and back: a hue shift is a rotation of the (I, Q) plane that keeps the luma Y
const TO_YIQ = [
  [0.299, 0.587, 0.114],
  [0.596, -0.274, -0.322],
  [0.211, -0.523, 0.312],
];
const FROM_YIQ = invert3(TO_YIQ);

/**
 * One random augmentation of every image of a batch `[N, H, W, C]` (values in [0, 1]), as
 * batched tfjs ops, in SimCLR's order: random resized crop (with the flip, one
 * `cropAndResize`), colour jitter (brightness, contrast, saturation, hue, in that fixed order,
 * each clipped to [0, 1] like torchvision), random greyscale, optional Gaussian blur, then
 * optional per-channel normalisation. Every random number comes from `rng`, drawn in a fixed
 * order, so a seed fixes the views on every backend. Saturation, hue and greyscale act only on
 * colour (C = 3) images.
 *
 * @example
 * ```ts
 * const rng = new Rng(7);
 * const view = colorAugment(batch, rng, { outputSize: [56, 56], normalize: measureChannelStats(train, 3) });
 * ```
 */
export function colorAugment(images: tf.Tensor4D, rng: Rng, options: ColorAugmentOptions = {}): tf.Tensor4D {
  const fn = 'colorAugment';
  check(
    images.rank === 4,
    () => `${fn}: images must be [N, H, W, C], but got shape ${shapeString(images.shape)}.`,
  );
  const [n, h, w, c] = images.shape;
  check(c === 1 || c === 3, () => `${fn}: images must have 1 or 3 channels, but got ${c}.`);
  const [oh, ow] = options.outputSize ?? [h, w];
  check(
    Number.isInteger(oh) && Number.isInteger(ow) && oh >= 1 && ow >= 1 && oh <= h && ow <= w,
    () =>
      `${fn}: outputSize must be at most the image size [${h}, ${w}] (an image smaller than the crop would be upscaled), but got [${oh}, ${ow}].`,
  );
  const scale = range(fn, 'scale', options.scale ?? SIMCLR_AUGMENT.scale, 0, 1);
  const ratio = range(fn, 'ratio', options.ratio ?? SIMCLR_AUGMENT.ratio, 1e-3, 1e3);
  const flip = probability(fn, 'flip', options.flip ?? SIMCLR_AUGMENT.flip);
  const jitter = options.jitter === false ? null : { ...SIMCLR_AUGMENT.jitter, ...(options.jitter ?? {}) };
  if (jitter) {
    for (const k of ['brightness', 'contrast', 'saturation'] as const)
      checkIn(fn, `jitter.${k}`, jitter[k], 0, 1);
    checkIn(fn, 'jitter.hue', jitter.hue, 0, 0.5);
    probability(fn, 'jitter.probability', jitter.probability);
  }
  const greyscale = probability(fn, 'greyscale', options.greyscale ?? SIMCLR_AUGMENT.greyscale);
  const blur = options.blur ? options.blur : null;
  const normalize = options.normalize ? checkStats(fn, options.normalize, c) : null;

  // draw every random number first, in a fixed order (image by image, transform by transform)
  const boxes = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const [y1, x1, y2, x2] = cropBox(rng, h, w, scale, ratio);
    boxes.set(rng.next() < flip ? [y1, x2, y2, x1] : [y1, x1, y2, x2], i * 4);
  }
  const factors = new Float32Array(n * 3).fill(1); // brightness, contrast, saturation
  const hues = new Float32Array(n);
  if (jitter) {
    for (let i = 0; i < n; i++) {
      if (!(rng.next() < jitter.probability)) continue;
      factors[i * 3] = 1 + jitter.brightness * (2 * rng.next() - 1);
      factors[i * 3 + 1] = 1 + jitter.contrast * (2 * rng.next() - 1);
      factors[i * 3 + 2] = 1 + jitter.saturation * (2 * rng.next() - 1);
      hues[i] = jitter.hue * (2 * rng.next() - 1);
    }
  }
  const grey = Float32Array.from({ length: n }, () => (rng.next() < greyscale ? 1 : 0));
  let sigmas: Float32Array | null = null;
  let kernelSize = 0;
  if (blur) {
    const p = probability(fn, 'blur.probability', blur.probability ?? 0.5);
    const [lo, hi] = range(fn, 'blur.sigma', blur.sigma ?? [0.1, 2], 1e-6, 1e3);
    kernelSize = blur.kernelSize ?? Math.max(3, 2 * Math.floor(Math.min(oh, ow) / 20) + 1);
    check(
      Number.isInteger(kernelSize) && kernelSize >= 1 && kernelSize % 2 === 1,
      () => `${fn}: blur.kernelSize must be an odd integer >= 1, but got ${kernelSize}.`,
    );
    sigmas = Float32Array.from({ length: n }, () => (rng.next() < p ? lo + (hi - lo) * rng.next() : 0));
  }

  return tf.tidy(() => {
    let x = tf.image.cropAndResize(
      images,
      tf.tensor2d(boxes, [n, 4]),
      tf.tensor1d(
        Int32Array.from({ length: n }, (_, i) => i),
        'int32',
      ),
      [oh, ow],
    ) as tf.Tensor4D;
    const perImage = (values: Float32Array, stride: number, k: number) =>
      tf.tensor4d(
        Float32Array.from({ length: n }, (_, i) => values[i * stride + k]),
        [n, 1, 1, 1],
      );
    if (jitter) {
      x = tf.clipByValue(tf.mul(x, perImage(factors, 3, 0)), 0, 1);
      const meanGrey = tf.mean(c === 3 ? greyOf(x) : x, [1, 2, 3], true);
      x = tf.clipByValue(tf.add(tf.mul(tf.sub(x, meanGrey), perImage(factors, 3, 1)), meanGrey), 0, 1);
      if (c === 3) {
        const g = greyOf(x);
        x = tf.clipByValue(tf.add(tf.mul(tf.sub(x, g), perImage(factors, 3, 2)), g), 0, 1);
        if (hues.some((v) => v !== 0)) x = tf.clipByValue(applyColourMatrices(x, hueMatrices(hues)), 0, 1);
      }
    }
    if (c === 3 && grey.some((v) => v === 1)) {
      const g = tf.tensor4d(grey, [n, 1, 1, 1]);
      x = tf.add(tf.mul(x, tf.sub(1, g)), tf.mul(tf.tile(greyOf(x), [1, 1, 1, 3]), g));
    }
    if (sigmas?.some((s) => s > 0)) x = gaussianBlur(x, sigmas, kernelSize);
    if (normalize) {
      x = tf.div(
        tf.sub(x, tf.tensor4d(Float32Array.from(normalize.mean), [1, 1, 1, c])),
        tf.tensor4d(Float32Array.from(normalize.std), [1, 1, 1, c]),
      );
    }
    return x;
  });
}

/**
 * Per-channel mean and standard deviation of `[N, H, W, C]` images (row-major, any value range),
 * in float64: what {@link ColorAugmentOptions.normalize} takes when measured on the training set.
 */
export function measureChannelStats(images: ArrayLike<number>, channels: number): ChannelStats {
  check(
    Number.isInteger(channels) && channels >= 1 && images.length % channels === 0 && images.length > 0,
    () =>
      `measureChannelStats: images must hold a whole number of ${channels}-channel pixels, but got ${images.length} values.`,
  );
  const sum = new Float64Array(channels);
  const sumSq = new Float64Array(channels);
  for (let k = 0; k < images.length; k++) {
    const v = images[k];
    sum[k % channels] += v;
    sumSq[k % channels] += v * v;
  }
  const count = images.length / channels;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sumSq, (s, ch) => Math.sqrt(Math.max(s / count - mean[ch] ** 2, 0)) || 1);
  return { mean, std };
}

/** torchvision `RandomResizedCrop.get_params`: 10 tries, then the centre crop of the clamped ratio. Normalised box. */
function cropBox(
  rng: Rng,
  h: number,
  w: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): [number, number, number, number] {
  const area = h * w;
  const [logLo, logHi] = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * rng.next());
    const aspect = Math.exp(logLo + (logHi - logLo) * rng.next());
    const cw = Math.round(Math.sqrt(target * aspect));
    const ch = Math.round(Math.sqrt(target / aspect));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      const top = rng.int(h - ch + 1);
      const left = rng.int(w - cw + 1);
      return [top / h, left / w, (top + ch) / h, (left + cw) / w];
    }
  }
  const inRatio = w / h;
  let cw = w;
  let ch = h;
  if (inRatio < ratio[0]) ch = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) cw = Math.round(h * ratio[1]);
  const top = Math.floor((h - ch) / 2);
  const left = Math.floor((w - cw) / 2);
  return [top / h, left / w, (top + ch) / h, (left + cw) / w];
}

function greyOf(x: tf.Tensor4D): tf.Tensor4D {
  return tf.sum(tf.mul(x, tf.tensor1d(Float32Array.from(LUMA))), -1, true) as tf.Tensor4D;
}

/** `[N, 3, 3]` matrices M with `rgb' = M rgb`: a rotation by `hue` turns of the YIQ chroma plane. */
function hueMatrices(hues: Float32Array): tf.Tensor3D {
  const out = new Float32Array(hues.length * 9);
  hues.forEach((hue, i) => {
    const a = 2 * Math.PI * hue;
    const rot = [
      [1, 0, 0],
      [0, Math.cos(a), -Math.sin(a)],
      [0, Math.sin(a), Math.cos(a)],
    ];
    const m = mul3(FROM_YIQ, mul3(rot, TO_YIQ));
    for (let r = 0; r < 3; r++) for (let k = 0; k < 3; k++) out[i * 9 + r * 3 + k] = m[r][k];
  });
  return tf.tensor3d(out, [hues.length, 3, 3]);
}

/** `x[n, y, x, :] ← M[n] · x[n, y, x, :]` as one batched matmul. */
function applyColourMatrices(x: tf.Tensor4D, matrices: tf.Tensor3D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const flat = tf.reshape(x, [n, h * w, c]) as tf.Tensor3D;
  return tf.reshape(tf.matMul(flat, matrices, false, true), [n, h, w, c]);
}

/** Separable Gaussian blur with one σ per image (σ = 0: unchanged), reflect padding. */
function gaussianBlur(x: tf.Tensor4D, sigmas: Float32Array, size: number): tf.Tensor4D {
  const [n, h, w] = x.shape;
  const radius = (size - 1) / 2;
  const weights = new Float32Array(n * size);
  sigmas.forEach((sigma, i) => {
    if (sigma <= 0) {
      weights[i * size + radius] = 1;
      return;
    }
    let total = 0;
    for (let t = 0; t < size; t++) {
      const v = Math.exp(-((t - radius) ** 2) / (2 * sigma * sigma));
      weights[i * size + t] = v;
      total += v;
    }
    for (let t = 0; t < size; t++) weights[i * size + t] /= total;
  });
  const tap = (t: number) =>
    tf.tensor4d(
      Float32Array.from({ length: n }, (_, i) => weights[i * size + t]),
      [n, 1, 1, 1],
    );
  const padH = Math.min(radius, h - 1);
  const padW = Math.min(radius, w - 1);
  const pass = (input: tf.Tensor4D, axis: 1 | 2): tf.Tensor4D => {
    const pad = axis === 1 ? padH : padW;
    const len = axis === 1 ? h : w;
    const padding: [number, number][] = [
      [0, 0],
      axis === 1 ? [pad, pad] : [0, 0],
      axis === 2 ? [pad, pad] : [0, 0],
      [0, 0],
    ];
    const padded = pad > 0 ? tf.mirrorPad(input, padding, 'reflect') : input;
    let out: tf.Tensor4D | null = null;
    for (let t = 0; t < size; t++) {
      const offset = t - radius + pad;
      if (offset < 0 || offset + len > len + 2 * pad) continue; // taps beyond a tiny image's border
      const begin = axis === 1 ? [0, offset, 0, 0] : [0, 0, offset, 0];
      const shape = axis === 1 ? [-1, len, -1, -1] : [-1, -1, len, -1];
      const term = tf.mul(tf.slice(padded, begin, shape), tap(t)) as tf.Tensor4D;
      out = out ? tf.add(out, term) : term;
    }
    return out ?? input;
  };
  return pass(pass(x, 1), 2);
}

function range(
  fn: string,
  name: string,
  value: readonly [number, number],
  lo: number,
  hi: number,
): [number, number] {
  check(
    Array.isArray(value) &&
      value.length === 2 &&
      value.every((v) => typeof v === 'number' && Number.isFinite(v)) &&
      value[0] > 0 &&
      value[0] >= lo &&
      value[0] <= value[1] &&
      value[1] <= hi,
    () =>
      `${fn}: ${name} must be [min, max] with 0 < min <= max${hi === 1 ? ' <= 1' : ''}, but got ${JSON.stringify(value)}.`,
  );
  return [value[0], value[1]];
}

function probability(fn: string, name: string, p: number): number {
  checkIn(fn, name, p, 0, 1);
  return p;
}

function checkIn(fn: string, name: string, v: number, lo: number, hi: number): void {
  check(
    typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi,
    () => `${fn}: ${name} must be a number in [${lo}, ${hi}], but got ${String(v)}.`,
  );
}

function checkStats(fn: string, stats: ChannelStats, c: number): ChannelStats {
  check(
    Array.isArray(stats.mean) &&
      Array.isArray(stats.std) &&
      stats.mean.length === c &&
      stats.std.length === c &&
      stats.std.every((s) => typeof s === 'number' && s > 0) &&
      stats.mean.every((m) => typeof m === 'number' && Number.isFinite(m)),
    () =>
      `${fn}: normalize must give ${c} means and ${c} standard deviations > 0 (one per channel), but got ${JSON.stringify(stats)}.`,
  );
  return stats;
}

function mul3(a: number[][], b: number[][]): number[][] {
  return a.map((row) => [0, 1, 2].map((k) => row[0] * b[0][k] + row[1] * b[1][k] + row[2] * b[2][k]));
}

function invert3(m: number[][]): number[][] {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
  return [
    [(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
    [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
    [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det],
  ];
}
