import { ContrastiveError } from '../errors.js';
import type { ImageFit } from './imageDecode.js';

/**
 * The `'portable'` image pipeline of frozen pretrained backbones: PNG decoding, compositing on a
 * background, fitting and resizing written once in TypeScript with no Node or DOM import, so that
 * Node (training, `embed`, `index`) and the exported web page run the very same arithmetic and give
 * the same bytes. (sharp's libvips resize cannot be matched exactly in a page: `src/web/pixels.ts`
 * gets within 2 levels of it, which is enough for small models on raw pixels but not for a
 * pretrained network, whose features amplify such differences.)
 *
 * Only arithmetic that IEEE doubles give identically everywhere is used (a cubic polynomial
 * kernel: no `Math.sin`), so the two sides agree bit for bit.
 */

/** 8-bit RGBA pixels, row-major, not premultiplied. */
export interface RgbaImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** What {@link prepareImage} fits an image to. */
export interface PortableImageOptions {
  /** Output `[height, width]`. */
  size: readonly [number, number];
  fit: ImageFit;
  /** Colour transparent pixels are composited on, or null (alpha dropped; `pad` fills black). */
  background: readonly [number, number, number] | null;
}

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length > 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/** A PNG's chunks that {@link pngToRgba} needs, with its image data still compressed. */
export interface ParsedPng {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  palette: Uint8Array | null;
  transparency: Uint8Array | null;
  /** The concatenated IDAT chunks: a zlib stream. */
  compressed: Uint8Array;
}

/**
 * Reads a PNG's header and chunks. Returns null for a PNG this decoder does not handle
 * (interlaced), which callers then decode another way; a damaged file is an error.
 */
export function parsePng(bytes: Uint8Array, name = 'the image'): ParsedPng | null {
  const fail = (why: string) => new ContrastiveError(`decodePng: ${name} is not a valid PNG (${why}).`);
  if (!isPng(bytes)) throw fail('no PNG signature');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 8;
  let header: Omit<ParsedPng, 'palette' | 'transparency' | 'compressed'> | null = null;
  let interlaced = false;
  let palette: Uint8Array | null = null;
  let transparency: Uint8Array | null = null;
  const idat: Uint8Array[] = [];
  while (offset + 8 <= bytes.length) {
    const length = view.getUint32(offset);
    const type = String.fromCharCode(...bytes.subarray(offset + 4, offset + 8));
    const start = offset + 8;
    if (start + length + 4 > bytes.length) throw fail(`chunk ${type} runs past the end`);
    const body = bytes.subarray(start, start + length);
    if (type === 'IHDR') {
      if (length < 13) throw fail('short IHDR');
      header = {
        width: view.getUint32(start),
        height: view.getUint32(start + 4),
        bitDepth: body[8],
        colorType: body[9],
      };
      interlaced = body[12] !== 0;
    } else if (type === 'PLTE') palette = body;
    else if (type === 'tRNS') transparency = body;
    else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    offset = start + length + 4;
  }
  if (!header) throw fail('no IHDR chunk');
  if (!(header.width > 0 && header.height > 0)) throw fail('zero width or height');
  if (![0, 2, 3, 4, 6].includes(header.colorType)) throw fail(`colour type ${header.colorType}`);
  if (header.colorType === 3 && !palette) throw fail('palette image without PLTE');
  if (idat.length === 0) throw fail('no IDAT chunk');
  if (interlaced) return null;
  const compressed = new Uint8Array(idat.reduce((s, c) => s + c.length, 0));
  let at = 0;
  for (const c of idat) {
    compressed.set(c, at);
    at += c.length;
  }
  return { ...header, palette, transparency, compressed };
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * A parsed PNG's inflated image data (the zlib stream of {@link ParsedPng.compressed}, inflated)
 * to 8-bit RGBA: filters undone, grey and palette expanded, `tRNS` applied, 16-bit samples
 * reduced to their high byte.
 */
export function pngToRgba(png: ParsedPng, inflated: Uint8Array, name = 'the image'): RgbaImage {
  const { width, height, bitDepth, colorType } = png;
  const channels = CHANNELS[colorType];
  const bitsPerPixel = channels * bitDepth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (inflated.length < height * (stride + 1))
    throw new ContrastiveError(`decodePng: ${name} is not a valid PNG (its image data is short).`);
  const raw = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = inflated[y * (stride + 1)];
    const line = inflated.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = y * stride;
    const prev = out - stride;
    // one loop per filter type: no branch per byte
    if (filter === 0 || (filter === 2 && y === 0)) raw.set(line, out);
    else if (filter === 1) {
      for (let x = 0; x < stride; x++) raw[out + x] = (line[x] + (x >= bpp ? raw[out + x - bpp] : 0)) & 255;
    } else if (filter === 2) {
      for (let x = 0; x < stride; x++) raw[out + x] = (line[x] + raw[prev + x]) & 255;
    } else if (filter === 3) {
      for (let x = 0; x < stride; x++) {
        const a = x >= bpp ? raw[out + x - bpp] : 0;
        const b = y > 0 ? raw[prev + x] : 0;
        raw[out + x] = (line[x] + ((a + b) >> 1)) & 255;
      }
    } else if (filter === 4) {
      for (let x = 0; x < stride; x++) {
        const a = x >= bpp ? raw[out + x - bpp] : 0;
        const b = y > 0 ? raw[prev + x] : 0;
        const c = y > 0 && x >= bpp ? raw[prev + x - bpp] : 0;
        raw[out + x] = (line[x] + paeth(a, b, c)) & 255;
      }
    } else
      throw new ContrastiveError(`decodePng: ${name} is not a valid PNG (row ${y} has filter ${filter}).`);
  }
  // sample s of pixel x in row y, at the file's depth
  const sample = (y: number, x: number, s: number): number => {
    const row = y * stride;
    if (bitDepth === 8) return raw[row + x * channels + s];
    if (bitDepth === 16) {
      const i = row + (x * channels + s) * 2;
      return (raw[i] << 8) | raw[i + 1];
    }
    const bit = (x * channels + s) * bitDepth;
    return (raw[row + (bit >> 3)] >> (8 - bitDepth - (bit & 7))) & ((1 << bitDepth) - 1);
  };
  const max = (1 << bitDepth) - 1;
  const to8 = (v: number) => (bitDepth === 16 ? v >> 8 : bitDepth === 8 ? v : Math.round((v * 255) / max));
  const trns = png.transparency;
  const key =
    trns && colorType === 0 && trns.length >= 2
      ? [(trns[0] << 8) | trns[1]]
      : trns && colorType === 2 && trns.length >= 6
        ? [(trns[0] << 8) | trns[1], (trns[2] << 8) | trns[3], (trns[4] << 8) | trns[5]]
        : null;
  const data = new Uint8Array(width * height * 4);
  if (bitDepth === 8 && colorType !== 3 && !key) {
    // the common case, without a per-sample call: 8-bit grey, grey + alpha, RGB or RGBA
    for (let y = 0; y < height; y++) {
      let i = y * stride;
      let o = y * width * 4;
      for (let x = 0; x < width; x++, i += channels, o += 4) {
        if (channels >= 3) {
          data[o] = raw[i];
          data[o + 1] = raw[i + 1];
          data[o + 2] = raw[i + 2];
        } else data[o] = data[o + 1] = data[o + 2] = raw[i];
        data[o + 3] = channels === 4 ? raw[i + 3] : channels === 2 ? raw[i + 1] : 255;
      }
    }
    return { data, width, height };
  }
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      if (colorType === 3) {
        const i = sample(y, x, 0);
        const p = png.palette!;
        if (i * 3 + 2 >= p.length)
          throw new ContrastiveError(
            `decodePng: ${name} is not a valid PNG (palette index ${i} out of range).`,
          );
        data[o] = p[i * 3];
        data[o + 1] = p[i * 3 + 1];
        data[o + 2] = p[i * 3 + 2];
        data[o + 3] = trns && i < trns.length ? trns[i] : 255;
      } else if (colorType === 0 || colorType === 4) {
        const g = sample(y, x, 0);
        data[o] = data[o + 1] = data[o + 2] = to8(g);
        data[o + 3] = colorType === 4 ? to8(sample(y, x, 1)) : key && g === key[0] ? 0 : 255;
      } else {
        const r = sample(y, x, 0);
        const g = sample(y, x, 1);
        const b = sample(y, x, 2);
        data[o] = to8(r);
        data[o + 1] = to8(g);
        data[o + 2] = to8(b);
        data[o + 3] =
          colorType === 6
            ? to8(sample(y, x, 3))
            : key && r === key[0] && g === key[1] && b === key[2]
              ? 0
              : 255;
      }
    }
  return { data, width, height };
}

/** Keys' cubic convolution kernel (a = −0.5): a polynomial, so every engine computes it alike. */
function cubic(x: number): number {
  const t = x < 0 ? -x : x;
  if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
  if (t < 2) return ((-0.5 * t + 2.5) * t - 4) * t + 2;
  return 0;
}

/** Taps and normalised weights of each output sample along one axis. */
interface AxisTaps {
  first: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  span: number;
}

/**
 * The resampling of `length` input samples, window `[start, start + window)`, to `out` samples:
 * antialiased cubic (the kernel stretched by the shrink factor), centres aligned, taps outside the
 * image dropped and the rest renormalised.
 */
function axisTaps(length: number, start: number, window: number, out: number): AxisTaps {
  const scale = window / out;
  const stretch = Math.max(1, scale);
  const support = 2 * stretch;
  const span = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(out);
  const count = new Int32Array(out);
  const weights = new Float64Array(out * span);
  for (let i = 0; i < out; i++) {
    const centre = start + (i + 0.5) * scale - 0.5;
    const lo = Math.max(0, Math.ceil(centre - support));
    const hi = Math.min(length - 1, Math.floor(centre + support));
    let sum = 0;
    let n = 0;
    for (let t = lo; t <= hi && n < span; t++, n++) {
      const w = cubic((t - centre) / stretch);
      weights[i * span + n] = w;
      sum += w;
    }
    if (n === 0 || sum === 0) {
      // a window entirely outside the image cannot happen for the fits used; keep the nearest pixel
      first[i] = Math.min(length - 1, Math.max(0, Math.round(centre)));
      count[i] = 1;
      weights[i * span] = 1;
      continue;
    }
    for (let k = 0; k < n; k++) weights[i * span + k] /= sum;
    first[i] = lo;
    count[i] = n;
  }
  return { first, count, weights, span };
}

/**
 * Resamples 3-channel byte pixels `[height, width, 3]` (window `x0, y0, w, h` in source pixels) to
 * `outHeight × outWidth`: horizontal pass, then vertical, rounded to bytes at the end.
 */
function resample(
  src: Uint8Array,
  width: number,
  height: number,
  [x0, y0, windowWidth, windowHeight]: [number, number, number, number],
  outWidth: number,
  outHeight: number,
): Uint8Array {
  const tx = axisTaps(width, x0, windowWidth, outWidth);
  const ty = axisTaps(height, y0, windowHeight, outHeight);
  const mid = new Float64Array(height * outWidth * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < outWidth; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const base = x * tx.span;
      for (let k = 0; k < tx.count[x]; k++) {
        const w = tx.weights[base + k];
        const s = (y * width + tx.first[x] + k) * 3;
        r += w * src[s];
        g += w * src[s + 1];
        b += w * src[s + 2];
      }
      const o = (y * outWidth + x) * 3;
      mid[o] = r;
      mid[o + 1] = g;
      mid[o + 2] = b;
    }
  const out = new Uint8Array(outHeight * outWidth * 3);
  for (let y = 0; y < outHeight; y++) {
    const base = y * ty.span;
    for (let x = 0; x < outWidth; x++)
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let k = 0; k < ty.count[y]; k++)
          v += ty.weights[base + k] * mid[((ty.first[y] + k) * outWidth + x) * 3 + c];
        const q = Math.round(v);
        out[(y * outWidth + x) * 3 + c] = q < 0 ? 0 : q > 255 ? 255 : q;
      }
  }
  return out;
}

/**
 * RGBA pixels to the backbone's RGB input bytes `[height, width, 3]`: composited on the background
 * (`round((c·a + bg·(255 − a)) / 255)`; alpha dropped without one), then fitted — `stretch` to the
 * size, `crop` scaled to cover and centre-cropped, `pad` scaled to fit and centred on the
 * background (black without one) — with an antialiased cubic resampler.
 */
export function prepareImage(image: RgbaImage, options: PortableImageOptions): Uint8Array {
  const { width, height, data } = image;
  const [outHeight, outWidth] = options.size;
  if (!(width > 0 && height > 0 && data.length === width * height * 4))
    throw new ContrastiveError(
      `prepareImage: image must be ${width}×${height} RGBA (${width * height * 4} bytes), but holds ${data.length}.`,
    );
  const bg = options.background;
  // composited values are whole numbers 0–255: bytes (a quarter of the memory of doubles, same arithmetic)
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0, i = 0, o = 0; p < width * height; p++, i += 4, o += 3) {
    const a = data[i + 3];
    if (!bg || a === 255) {
      rgb[o] = data[i];
      rgb[o + 1] = data[i + 1];
      rgb[o + 2] = data[i + 2];
    } else if (a === 0) {
      rgb[o] = bg[0];
      rgb[o + 1] = bg[1];
      rgb[o + 2] = bg[2];
    } else for (let c = 0; c < 3; c++) rgb[o + c] = Math.round((data[i + c] * a + bg[c] * (255 - a)) / 255);
  }
  if (options.fit === 'stretch')
    return resample(rgb, width, height, [0, 0, width, height], outWidth, outHeight);
  if (options.fit === 'crop') {
    const s = Math.max(outWidth / width, outHeight / height);
    const w = outWidth / s;
    const h = outHeight / s;
    return resample(rgb, width, height, [(width - w) / 2, (height - h) / 2, w, h], outWidth, outHeight);
  }
  const s = Math.min(outWidth / width, outHeight / height);
  const innerWidth = Math.min(outWidth, Math.max(1, Math.round(width * s)));
  const innerHeight = Math.min(outHeight, Math.max(1, Math.round(height * s)));
  const inner = resample(rgb, width, height, [0, 0, width, height], innerWidth, innerHeight);
  const out = new Uint8Array(outHeight * outWidth * 3);
  const fill = bg ?? [0, 0, 0];
  for (let p = 0; p < outHeight * outWidth; p++) out.set(fill, p * 3);
  const left = Math.floor((outWidth - innerWidth) / 2);
  const top = Math.floor((outHeight - innerHeight) / 2);
  for (let y = 0; y < innerHeight; y++)
    out.set(inner.subarray(y * innerWidth * 3, (y + 1) * innerWidth * 3), ((top + y) * outWidth + left) * 3);
  return out;
}
