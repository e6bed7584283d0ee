/// <reference lib="dom" />
import { ContrastiveError } from '../errors.js';

/**
 * Images to model inputs in the browser, the way Node does it (`src/data/imageDecode.ts`: sharp,
 * i.e. libvips): alpha dropped, grey by libvips' sRGB → B_W conversion (luminance in linear
 * light, then its 8-bit gamma table), stretched to the model's size, then scaled to [0, 1].
 * Images already at the model's size are bit-identical to Node's; resizing uses a Lanczos-3
 * reduction like libvips' (agreement measured in the tests, not exact).
 */

/** Decoded pixels: 8-bit, row-major, interleaved channels (1 grey, 3 RGB or 4 RGBA). */
export interface RawPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

/** What the browser entry embeds: decoded pixels, a canvas image source, or an encoded image file. */
export type ImageInput = RawPixels | ImageData | HTMLImageElement | HTMLCanvasElement | ImageBitmap | Blob;

/** The model's input image shape `[height, width, channels]`. */
export type ImageShape = readonly [number, number, number];

/** sRGB 8-bit → linear light. */
const TO_LINEAR = Float64Array.from({ length: 256 }, (_, v) => {
  const x = v / 255;
  return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
});
/** libvips' `vips_Y2v_8`: linear light (×255) → 8-bit sRGB, rounded, with one entry past the end. */
const TO_GAMMA = Float64Array.from({ length: 257 }, (_, i) => {
  const y = i / 255;
  return Math.round(255 * (y <= 0.0031308 ? 12.92 * y : 1.055 * y ** (1 / 2.4) - 0.055));
});

/** libvips' grey of an sRGB pixel (`vips_col_scRGB2BW_8`: Rec. 709 luminance, interpolated gamma table). */
export function greyOf(r: number, g: number, b: number): number {
  const y = (0.2126 * TO_LINEAR[r] + 0.7152 * TO_LINEAR[g] + 0.0722 * TO_LINEAR[b]) * 255;
  const i = Math.min(255, Math.max(0, Math.trunc(y)));
  const v = TO_GAMMA[i] + (y - i) * (TO_GAMMA[i + 1] - TO_GAMMA[i]);
  return Math.min(255, Math.max(0, Math.round(v)));
}

/** Converts to 1 or 3 channels as sharp's `removeAlpha()` + `grayscale()` / sRGB do. */
export function convertChannels(pixels: RawPixels, channels: 1 | 3): Uint8Array {
  const { data, width, height, channels: from } = pixels;
  const n = width * height;
  const out = new Uint8Array(n * channels);
  for (let p = 0; p < n; p++) {
    const o = p * from;
    if (from === 1) {
      if (channels === 1) out[p] = data[o];
      else out.fill(data[o], p * 3, p * 3 + 3);
    } else if (channels === 1) out[p] = greyOf(data[o], data[o + 1], data[o + 2]);
    else {
      out[p * 3] = data[o];
      out[p * 3 + 1] = data[o + 1];
      out[p * 3 + 2] = data[o + 2];
    }
  }
  return out;
}

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const px = Math.PI * x;
  return (3 * Math.sin(px) * Math.sin(px / 3)) / (px * px);
}

/** Resamples one axis: `inLength` → `outLength` samples of `channels` values with the given strides. */
function resampleAxis(
  input: Uint8Array,
  inLength: number,
  outLength: number,
  lines: number,
  lineStride: number,
  sampleStride: number,
  outLineStride: number,
  outSampleStride: number,
  channels: number,
): Uint8Array {
  const out = new Uint8Array(lines * outLength * channels);
  const scale = inLength / outLength;
  const stretch = Math.max(1, scale);
  const support = 3 * stretch;
  for (let x = 0; x < outLength; x++) {
    // libvips' centre convention: output pixel x sits at input position (x + 0.5)·scale − 0.5
    const centre = (x + 0.5) * scale - 0.5;
    const first = Math.max(0, Math.ceil(centre - support));
    const last = Math.min(inLength - 1, Math.floor(centre + support));
    const weights: number[] = [];
    let sum = 0;
    for (let t = first; t <= last; t++) {
      const w = lanczos3((t - centre) / stretch);
      weights.push(w);
      sum += w;
    }
    for (let line = 0; line < lines; line++) {
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let t = first; t <= last; t++)
          acc += weights[t - first] * input[line * lineStride + t * sampleStride + c];
        const v = Math.round(acc / sum);
        out[line * outLineStride + x * outSampleStride + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

/** Stretches `height × width × channels` 8-bit pixels to `outHeight × outWidth` (Lanczos-3, vertical then horizontal). */
export function resizePixels(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  if (width === outWidth && height === outHeight) return data;
  const rowStride = width * channels;
  // vertical: each column is a line; samples are rows
  const vertical =
    height === outHeight
      ? data
      : resampleAxis(data, height, outHeight, width, channels, rowStride, channels, rowStride, channels);
  return width === outWidth
    ? vertical
    : resampleAxis(
        vertical,
        width,
        outWidth,
        outHeight,
        rowStride,
        channels,
        outWidth * channels,
        channels,
        channels,
      );
}

/**
 * Decoded pixels to the model's input: `[h, w, c]` floats in [0, 1], converted, resized and
 * scaled as `decodeQueryImage` does in Node.
 */
export function modelInputFromPixels(pixels: RawPixels, [height, width, channels]: ImageShape): Float32Array {
  const fn = 'modelInputFromPixels';
  if (
    !(
      Number.isInteger(pixels.width) &&
      pixels.width > 0 &&
      Number.isInteger(pixels.height) &&
      pixels.height > 0
    )
  )
    throw new ContrastiveError(
      `${fn}: image width and height must be integers > 0, but got ${pixels.width}×${pixels.height}.`,
    );
  if (![1, 3, 4].includes(pixels.channels))
    throw new ContrastiveError(`${fn}: image channels must be 1, 3 or 4, but got ${pixels.channels}.`);
  if (pixels.data.length !== pixels.width * pixels.height * pixels.channels)
    throw new ContrastiveError(
      `${fn}: image data must hold ${pixels.width}×${pixels.height}×${pixels.channels} = ${pixels.width * pixels.height * pixels.channels} values, but holds ${pixels.data.length}.`,
    );
  if (channels !== 1 && channels !== 3)
    throw new ContrastiveError(`${fn}: the model's input channels must be 1 or 3, but got ${channels}.`);
  // sharp converts colour first (greyscale happens before resizing), then resizes
  const converted = convertChannels(pixels, channels);
  const resized = resizePixels(converted, pixels.width, pixels.height, channels, width, height);
  return Float32Array.from(resized, (v) => v / 255);
}

function isRawPixels(image: ImageInput): image is RawPixels {
  return (
    typeof image === 'object' &&
    image !== null &&
    'data' in image &&
    'channels' in image &&
    typeof (image as RawPixels).channels === 'number'
  );
}

/**
 * The pixels of any {@link ImageInput} at its own size, RGBA from a canvas for image sources. An
 * encoded file (`Blob`/`File`) is decoded by the browser without colour-space conversion, as
 * sharp reads it. A file the browser cannot decode is a {@link ContrastiveError} naming it.
 */
export async function readImagePixels(image: ImageInput): Promise<RawPixels> {
  if (isRawPixels(image)) return image;
  if (typeof ImageData !== 'undefined' && image instanceof ImageData)
    return { data: image.data, width: image.width, height: image.height, channels: 4 };
  let source: CanvasImageSource;
  let width: number;
  let height: number;
  if (typeof Blob !== 'undefined' && image instanceof Blob) {
    const name = 'name' in image && typeof image.name === 'string' ? image.name : 'the image';
    try {
      source = await createImageBitmap(image, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    } catch (error) {
      throw new ContrastiveError(
        `readImagePixels: cannot decode ${name} as an image (${(error as Error).message || 'unsupported or damaged file'}).`,
      );
    }
    ({ width, height } = source as ImageBitmap);
  } else if (typeof HTMLImageElement !== 'undefined' && image instanceof HTMLImageElement) {
    if (!image.complete || image.naturalWidth === 0)
      throw new ContrastiveError('readImagePixels: the <img> has not loaded (or failed to load) its image.');
    source = image;
    width = image.naturalWidth;
    height = image.naturalHeight;
  } else {
    source = image as HTMLCanvasElement | ImageBitmap;
    ({ width, height } = image as HTMLCanvasElement | ImageBitmap);
  }
  const canvas =
    typeof OffscreenCanvas !== 'undefined'
      ? new OffscreenCanvas(width, height)
      : Object.assign(document.createElement('canvas'), { width, height });
  const context = canvas.getContext('2d', { willReadFrequently: true }) as
    | CanvasRenderingContext2D
    | OffscreenCanvasRenderingContext2D
    | null;
  if (!context) throw new ContrastiveError('readImagePixels: this browser gives no 2-D canvas context.');
  context.drawImage(source, 0, 0);
  if ('close' in source && typeof source.close === 'function' && image instanceof Blob) source.close();
  const { data } = context.getImageData(0, 0, width, height);
  return { data, width, height, channels: 4 };
}
