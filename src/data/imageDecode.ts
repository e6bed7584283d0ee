import { readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { inflateSync } from 'node:zlib';
import { ContrastiveError } from '../errors.js';
import { isPng, parsePng, pngToRgba, prepareImage, type RgbaImage } from './portableImage.js';

/** How images are turned into pixels: every reader (folder, manifest, cache) decodes the same way. */
export interface ImageDecodeOptions {
  /** Output size `[height, width]`; images are resized to it (stretched). Default `[28, 28]`. */
  size?: readonly [number, number];
  /** 1 (grey) or 3 (RGB). Default 1. Any source (grey, RGB, RGBA, palette) is converted to it. */
  channels?: 1 | 3;
  /**
   * Reject images smaller than this many pixels on either side (they would be upscaled, e.g.
   * below a crop size). Default 0: every size is resized.
   */
  minSourceSize?: number;
  /** Images decoded at the same time (sharp runs them on libuv's pool). Default: the CPU count, at least 4 and at most 8. */
  concurrency?: number;
  /**
   * How an image whose aspect differs from `size` is fitted: `'stretch'` (default, the whole image
   * squeezed), `'crop'` (scaled to cover, centre cropped) or `'pad'` (scaled to fit, padded with
   * `background`, black when none).
   */
  fit?: ImageFit;
  /**
   * Colour an image with alpha is composited on, `[r, g, b]` bytes. Default none: the alpha
   * channel is dropped, so transparent pixels keep whatever colour the file stored there (the
   * behaviour of runs made before this option; see {@link parseBackground}).
   */
  background?: readonly [number, number, number] | null;
  /**
   * Who composites and resizes: `'libvips'` (default: sharp) or `'portable'`, the TypeScript
   * pipeline of `data/portableImage.ts` that the exported web page runs too (PNGs decoded by it as
   * well), so both give the same bytes. Frozen pretrained backbones use `'portable'`; 3 channels only.
   */
  resampler?: ImageResampler;
}

/** Who composites and resizes an image; see {@link ImageDecodeOptions.resampler}. */
export type ImageResampler = 'libvips' | 'portable';

/** How an image is fitted to the model's input size; see {@link ImageDecodeOptions.fit}. */
export type ImageFit = 'stretch' | 'crop' | 'pad';

/** The choices of {@link ImageFit}, for option tables. */
export const IMAGE_FITS: readonly ImageFit[] = ['stretch', 'crop', 'pad'];

/**
 * `white`, `black`, `none` or `#rrggbb` as `[r, g, b]` bytes (`null` for `none`); anything else
 * is an error naming `what`.
 */
export function parseBackground(value: string, what = '--background'): [number, number, number] | null {
  const v = value.trim().toLowerCase();
  if (v === 'none') return null;
  if (v === 'white') return [255, 255, 255];
  if (v === 'black') return [0, 0, 0];
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/.exec(v);
  if (!m)
    throw new ContrastiveError(
      `${what} must be white, black, none or a colour like #rrggbb, but got ${JSON.stringify(value)}.`,
    );
  return [Number.parseInt(m[1], 16), Number.parseInt(m[2], 16), Number.parseInt(m[3], 16)];
}

/** The decoder's settings with defaults filled in. */
export interface ResolvedDecodeOptions {
  height: number;
  width: number;
  channels: 1 | 3;
  minSourceSize: number;
  concurrency: number;
  fit: ImageFit;
  background: readonly [number, number, number] | null;
  resampler: ImageResampler;
}

/** Checks and fills in {@link ImageDecodeOptions}. */
export function resolveDecodeOptions(fn: string, options: ImageDecodeOptions): ResolvedDecodeOptions {
  const [height, width] = options.size ?? [28, 28];
  const channels = options.channels ?? 1;
  for (const [name, v] of [
    ['height', height],
    ['width', width],
  ] as const) {
    if (!(Number.isInteger(v) && v >= 1 && v <= 4096))
      throw new ContrastiveError(`${fn}: size ${name} must be an integer in [1, 4096], but got ${v}.`);
  }
  if (channels !== 1 && channels !== 3)
    throw new ContrastiveError(`${fn}: channels must be 1 or 3, but got ${String(channels)}.`);
  const concurrency = options.concurrency ?? Math.min(8, Math.max(4, availableParallelism()));
  if (!(Number.isInteger(concurrency) && concurrency >= 1))
    throw new ContrastiveError(`${fn}: concurrency must be an integer >= 1, but got ${concurrency}.`);
  const fit = options.fit ?? 'stretch';
  if (!IMAGE_FITS.includes(fit))
    throw new ContrastiveError(
      `${fn}: fit must be one of ${IMAGE_FITS.join(', ')}, but got ${JSON.stringify(fit)}.`,
    );
  const background = options.background ?? null;
  if (
    background !== null &&
    !(background.length === 3 && background.every((c) => Number.isInteger(c) && c >= 0 && c <= 255))
  )
    throw new ContrastiveError(
      `${fn}: background must be three bytes [r, g, b], but got ${JSON.stringify(background)}.`,
    );
  const resampler = options.resampler ?? 'libvips';
  if (resampler !== 'libvips' && resampler !== 'portable')
    throw new ContrastiveError(
      `${fn}: resampler must be libvips or portable, but got ${JSON.stringify(resampler)}.`,
    );
  if (resampler === 'portable' && channels !== 3)
    throw new ContrastiveError(
      `${fn}: the portable resampler makes RGB images; channels must be 3, but got ${channels}.`,
    );
  return {
    height,
    width,
    channels,
    minSourceSize: options.minSourceSize ?? 0,
    concurrency,
    fit,
    background,
    resampler,
  };
}

type Sharp = typeof import('sharp').default;
let sharpModule: Sharp | null = null;

async function loadSharp(): Promise<Sharp> {
  sharpModule ??= (await import('sharp')).default;
  return sharpModule;
}

/**
 * Decodes one image to `height × width × channels` uint8 pixels (row-major, HWC): composited on
 * the background (or its alpha dropped when there is none), fitted as `fit` says (stretched by
 * default), grey via sharp's `grayscale()` or sRGB. Throws the underlying
 * error; callers turn it into a message naming the file (and line).
 */
export async function decodeImage(
  file: string | Uint8Array,
  options: ResolvedDecodeOptions,
): Promise<Uint8Array> {
  if (options.resampler === 'portable') return decodePortable(file, options);
  const sharp = await loadSharp();
  const input = sharp(file);
  if (options.minSourceSize > 0) {
    const meta = await input.metadata();
    const w = meta.width ?? 0;
    const h = meta.height ?? 0;
    if (w < options.minSourceSize || h < options.minSourceSize)
      throw new Error(
        `the image is ${w}×${h}, smaller than the minimum ${options.minSourceSize} pixels per side`,
      );
  }
  const [r, g, b] = options.background ?? [0, 0, 0];
  // composite before resizing, so a transparent pixel's hidden colour never bleeds into its neighbours
  let pipeline = options.background ? input.flatten({ background: { r, g, b } }) : input.removeAlpha();
  pipeline = pipeline.resize(options.width, options.height, {
    fit: options.fit === 'crop' ? 'cover' : options.fit === 'pad' ? 'contain' : 'fill',
    position: 'centre',
    background: { r, g, b, alpha: 1 },
  });
  if (options.fit === 'pad') pipeline = pipeline.removeAlpha();
  pipeline = options.channels === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb');
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== options.channels) throw new Error(`decoded ${info.channels} channels`);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * An image file as 8-bit RGBA at its own size: a (non-interlaced) PNG by `data/portableImage.ts`,
 * exactly as the web page decodes it; anything else by sharp (sRGB, alpha added when absent).
 */
export async function decodeRgba(file: string | Uint8Array): Promise<RgbaImage> {
  const bytes = typeof file === 'string' ? new Uint8Array(await readFile(file)) : file;
  if (isPng(bytes)) {
    const png = parsePng(bytes, typeof file === 'string' ? file : 'the image');
    if (png) return pngToRgba(png, new Uint8Array(inflateSync(png.compressed)));
  }
  const sharp = await loadSharp();
  const { data, info } = await sharp(bytes)
    .toColourspace('srgb')
    .ensureAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 4) throw new Error(`decoded ${info.channels} channels, expected RGBA`);
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}

async function decodePortable(
  file: string | Uint8Array,
  options: ResolvedDecodeOptions,
): Promise<Uint8Array> {
  const image = await decodeRgba(file);
  if (image.width < options.minSourceSize || image.height < options.minSourceSize)
    throw new Error(
      `the image is ${image.width}×${image.height}, smaller than the minimum ${options.minSourceSize} pixels per side`,
    );
  return prepareImage(image, {
    size: [options.height, options.width],
    fit: options.fit,
    background: options.background,
  });
}

/** Why a file could not be decoded, in words: a missing file says so rather than sharp's text. */
export async function decodeFailure(file: string, error: unknown): Promise<string> {
  const info = await stat(file).catch(() => null);
  if (!info) return 'no such file';
  if (!info.isFile()) return 'not a file';
  return (error as Error).message;
}

/**
 * Decodes `files` with up to `concurrency` in flight, calling `done(i, pixels)` for each in any
 * order, or `failed(i, reason)`. When either callback throws, no new file is started, the files in
 * flight finish, and the first error is rethrown: nothing runs after this returns.
 */
export async function decodeAll(
  files: readonly string[],
  options: ResolvedDecodeOptions,
  done: (index: number, pixels: Uint8Array) => void,
  failed: (index: number, reason: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  let stopped = false;
  let firstError: unknown = null;
  const stop = (error: unknown) => {
    if (!stopped) firstError = error;
    stopped = true;
  };
  const worker = async () => {
    while (!stopped && next < files.length) {
      if (signal?.aborted) {
        stop(
          new ContrastiveError('stopped while decoding the images (Ctrl-C or SIGTERM); nothing was kept.'),
        );
        break;
      }
      const i = next++;
      let pixels: Uint8Array | null = null;
      let reason = '';
      try {
        pixels = await decodeImage(files[i], options);
      } catch (error) {
        reason = await decodeFailure(files[i], error);
      }
      try {
        if (pixels) done(i, pixels);
        else failed(i, reason);
      } catch (error) {
        stop(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, files.length) }, worker));
  if (stopped) throw firstError;
}
