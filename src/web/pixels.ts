/// <reference lib="dom" />
import { isPng, parsePng, pngToRgba, type RgbaImage } from '../data/portableImage.js';
import { ContrastiveError } from '../errors.js';

/**
 * Images to model inputs in the browser, the way Node does it (`src/data/imageDecode.ts`: sharp,
 * i.e. libvips): alpha dropped, grey by libvips' sRGB → B_W conversion (luminance in linear
 * light, then its 8-bit gamma table), stretched to the model's size, then scaled to [0, 1].
 * Images already at the model's size are bit-identical to Node's (grey: one random colour in
 * 20,000 lands one level off, at a rounding boundary); shrinking follows libvips' box shrink +
 * Lanczos-3 reduction to within 2 levels (measured in `test/web/browserParts.test.ts`).
 * Not copied: sharp resizes translucent images premultiplied by alpha (opaque ones are
 * unaffected), and enlarges with another interpolator.
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

/** libvips' box shrink of one line by an integer factor (output rounded up; the edge pixel repeats past the end). */
function shrinkLine(line: Uint8Array, factor: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(line.length / factor));
  for (let x = 0; x < out.length; x++) {
    let sum = 0;
    for (let i = 0; i < factor; i++) sum += line[Math.min(line.length - 1, x * factor + i)];
    out[x] = Math.floor((sum + factor / 2) / factor);
  }
  return out;
}

/**
 * Lanczos-3 resampling of one line to `outLength` samples, where `scale` input samples make one
 * output sample (libvips' centre convention; taps past the ends repeat the edge pixel).
 */
function reduceLine(line: Uint8Array, outLength: number, scale: number): Uint8Array {
  const out = new Uint8Array(outLength);
  const stretch = Math.max(1, scale);
  const support = 3 * stretch;
  const last = line.length - 1;
  for (let x = 0; x < outLength; x++) {
    const centre = (x + 0.5) * scale - 0.5;
    let acc = 0;
    let sum = 0;
    for (let t = Math.ceil(centre - support); t <= Math.floor(centre + support); t++) {
      const w = lanczos3((t - centre) / stretch);
      acc += w * line[t < 0 ? 0 : t > last ? last : t];
      sum += w;
    }
    const v = Math.round(acc / sum);
    out[x] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

/** Applies `map` to every column (axis 0) or row (axis 1) of each channel; returns the new image and its size. */
function mapLines(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  axis: 0 | 1,
  map: (line: Uint8Array) => Uint8Array,
): { data: Uint8Array; width: number; height: number } {
  const lines = axis === 0 ? width : height;
  const length = axis === 0 ? height : width;
  let out: Uint8Array | null = null;
  let outLength = 0;
  const line = new Uint8Array(length);
  for (let c = 0; c < channels; c++) {
    for (let l = 0; l < lines; l++) {
      for (let i = 0; i < length; i++)
        line[i] = data[(axis === 0 ? i * width + l : l * width + i) * channels + c];
      const mapped = map(line);
      if (!out) {
        outLength = mapped.length;
        out = new Uint8Array(lines * outLength * channels);
      }
      const outWidth = axis === 0 ? width : outLength;
      for (let i = 0; i < outLength; i++)
        out[(axis === 0 ? i * outWidth + l : l * outWidth + i) * channels + c] = mapped[i];
    }
  }
  return axis === 0 ? { data: out!, width, height: outLength } : { data: out!, width: outLength, height };
}

/**
 * Stretches `height × width × channels` 8-bit pixels to `outHeight × outWidth` as libvips'
 * `vips_resize` (what sharp's `resize(w, h, {fit: 'fill'})` calls) does when shrinking: per axis
 * an integer box shrink by ⌊scale / 2⌋, then a Lanczos-3 reduction by what remains, vertical
 * first. Measured against sharp: at most 2 levels apart, ~0.5 on average. Enlarging uses
 * Lanczos-3 too, where libvips interpolates differently: expect larger differences there.
 */
export function resizePixels(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  let image = { data, width, height };
  const shrinks: [0 | 1, number, number][] = [
    [0, height, outHeight],
    [1, width, outWidth],
  ];
  const factors = shrinks.map(([, from, to]) => (from > to ? Math.max(1, Math.floor(from / to / 2)) : 1));
  shrinks.forEach(([axis], i) => {
    if (factors[i] > 1)
      image = mapLines(image.data, image.width, image.height, channels, axis, (l) =>
        shrinkLine(l, factors[i]),
      );
  });
  shrinks.forEach(([axis, from, to], i) => {
    const length = axis === 0 ? image.height : image.width;
    if (length === to) return;
    // the residual scale is that of the exact shrunk size, as libvips computes it
    const scale = from / factors[i] / to;
    image = mapLines(image.data, image.width, image.height, channels, axis, (l) => reduceLine(l, to, scale));
  });
  return image.data;
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

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Any {@link ImageInput} as 8-bit RGBA at its own size, for a frozen pretrained backbone's
 * portable pipeline: a PNG file (`Blob`) is decoded by `data/portableImage.ts`, exactly as Node
 * decodes it (the browser's own decoder goes through a premultiplied canvas, which changes
 * translucent pixels); other inputs as {@link readImagePixels} reads them.
 */
export async function readImageRgba(image: ImageInput): Promise<RgbaImage> {
  if (typeof Blob !== 'undefined' && image instanceof Blob) {
    const bytes = new Uint8Array(await image.arrayBuffer());
    if (isPng(bytes)) {
      const name = 'name' in image && typeof image.name === 'string' ? image.name : 'the image';
      const png = parsePng(bytes, name);
      if (png) {
        let inflated: Uint8Array;
        try {
          inflated = await inflate(png.compressed);
        } catch (error) {
          throw new ContrastiveError(
            `readImageRgba: ${name} is not a valid PNG (its image data does not inflate: ${(error as Error).message}).`,
          );
        }
        return pngToRgba(png, inflated, name);
      }
    }
  }
  const pixels = await readImagePixels(image);
  const { width, height, channels, data } = pixels;
  if (channels === 4)
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
  const out = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) out[p * 4 + c] = data[p * channels + (channels === 3 ? c : 0)];
    out[p * 4 + 3] = 255;
  }
  return { data: out, width, height };
}
