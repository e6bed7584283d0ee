import { createHash } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ContrastiveError, check } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import {
  decodeAll,
  type ImageDecodeOptions,
  type ResolvedDecodeOptions,
  resolveDecodeOptions,
} from './imageDecode.js';

const FORMAT = 'tfjs-contrastive/image-cache@1';

/** Options of {@link ImageCache.open}. */
export interface ImageCacheOptions extends ImageDecodeOptions {
  /** Folder of the cache files (a run folder or a shared cache folder); created if missing. */
  cacheDir: string;
  /** Base name of the two files (`<name>.u8`, `<name>.json`). Default: `images-<key prefix>`. */
  name?: string;
  /**
   * Called with (images decoded, total) while a cache is built, at most every 1 % — for a
   * progress line; the library never prints.
   */
  onProgress?: (done: number, total: number) => void;
}

/** The sidecar that describes (and validates) a cache file. */
interface CacheHeader {
  format: typeof FORMAT;
  key: string;
  count: number;
  height: number;
  width: number;
  channels: number;
}

/**
 * Decoded images in one uint8 file on disk (`N × H × W × C` bytes, row-major HWC), built once with
 * sharp in parallel and reused while the sources are unchanged: the cache is keyed on every
 * file's path, size and modification time and on the decode options, so changing any of them
 * builds a new one. Batches are read by row index into a caller's Float32Array (values / 255,
 * exactly what `readImageFolder` returns), so memory stays at a few batches whatever the number
 * of images.
 *
 * @example
 * ```ts
 * const cache = await ImageCache.open(files, { cacheDir: 'runs/a/cache', size: [64, 64], channels: 3 });
 * const reader = cache.batchReader(batches);      // prefetches batch k+1 while k trains
 * for (let b = await reader.next(); b; b = await reader.next()) train(b.inputs, b.indices);
 * await cache.close();
 * ```
 */
export class ImageCache {
  private constructor(
    private readonly handle: FileHandle,
    /** The data file. */
    readonly path: string,
    /** Number of images N. */
    readonly count: number,
    readonly height: number,
    readonly width: number,
    readonly channels: number,
    /** Whether an existing cache was reused (no image decoded). */
    readonly reused: boolean,
  ) {}

  /** Bytes (and floats) per image: `H × W × C`. */
  get imageSize(): number {
    return this.height * this.width * this.channels;
  }

  /**
   * Opens the cache of `files` (in this order), building it when missing or stale. A file that
   * cannot be decoded is an error naming it; a stale cache is replaced atomically.
   */
  static async open(files: readonly string[], options: ImageCacheOptions): Promise<ImageCache> {
    const fn = 'ImageCache.open';
    check(files.length > 0, () => `${fn}: files must list at least one image, but got none.`);
    const decode = resolveDecodeOptions(fn, options);
    const key = await cacheKey(fn, files, decode);
    const name = options.name ?? `images-${key.slice(0, 16)}`;
    await mkdir(options.cacheDir, { recursive: true });
    const dataPath = join(options.cacheDir, `${name}.u8`);
    const headerPath = join(options.cacheDir, `${name}.json`);
    const header: CacheHeader = {
      format: FORMAT,
      key,
      count: files.length,
      height: decode.height,
      width: decode.width,
      channels: decode.channels,
    };
    const imageBytes = decode.height * decode.width * decode.channels;
    const existing = await readHeader(headerPath);
    const dataInfo = await stat(dataPath).catch(() => null);
    const reusable =
      existing !== null &&
      existing.key === key &&
      dataInfo !== null &&
      dataInfo.size === files.length * imageBytes;
    if (!reusable) {
      await rm(headerPath, { force: true });
      await buildCacheFile(files, decode, dataPath, options.onProgress);
      await writeFileAtomic(headerPath, `${JSON.stringify(header, null, 1)}\n`);
    }
    const handle = await open(dataPath, 'r');
    return new ImageCache(
      handle,
      dataPath,
      files.length,
      decode.height,
      decode.width,
      decode.channels,
      reusable,
    );
  }

  /**
   * Reads the images at `indices` into `out` (from `offset`), as floats in [0, 1]: image r of the
   * batch lands at `out[offset + r * imageSize ...]`. `scratch` (at least `indices.length ×
   * imageSize` bytes) can be passed to avoid allocating; reads run concurrently.
   */
  async readRows(
    indices: ArrayLike<number>,
    out: Float32Array,
    offset = 0,
    scratch?: Uint8Array,
  ): Promise<void> {
    const fn = 'ImageCache.readRows';
    const size = this.imageSize;
    const need = indices.length * size;
    check(
      out.length - offset >= need,
      () =>
        `${fn}: out must hold ${indices.length} images of ${size} values from offset ${offset}, but has ${out.length}.`,
    );
    const bytes = scratch && scratch.length >= need ? scratch : new Uint8Array(need);
    const reads: Promise<unknown>[] = [];
    for (let r = 0; r < indices.length; r++) {
      const i = indices[r];
      check(
        Number.isInteger(i) && i >= 0 && i < this.count,
        () => `${fn}: indices[${r}] must be an image index in [0, ${this.count - 1}], but got ${i}.`,
      );
      reads.push(this.handle.read(bytes, r * size, size, i * size));
    }
    await Promise.all(reads);
    const scale = 1 / 255;
    for (let k = 0; k < need; k++) out[offset + k] = bytes[k] * scale;
  }

  /**
   * A reader over `batches` (row indices each) that reads batch k+1 while the caller works on
   * batch k (double buffering): memory is two batches of floats and two of bytes. `reuse`, a
   * finished reader of this cache, lends its buffers when they are large enough (a new epoch
   * then touches no fresh memory pages).
   */
  batchReader(batches: readonly ArrayLike<number>[], reuse?: CachedBatchReader): CachedBatchReader {
    return new CachedBatchReader(this, batches, reuse);
  }

  /** Closes the data file. */
  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** One batch from a {@link CachedBatchReader}. */
export interface CachedBatch {
  /** `[B, H, W, C]` floats; valid until the next call of `next()` (the buffer is reused). */
  inputs: Float32Array;
  /** The row indices of the batch. */
  indices: ArrayLike<number>;
  /** Position of the batch in the list. */
  batch: number;
  /** Milliseconds `next()` waited for this batch (0 when the prefetch had finished). */
  waitedMs: number;
}

/** Double-buffered batch reading with an async prefetch; see {@link ImageCache.batchReader}. */
export class CachedBatchReader {
  private readonly buffers: [Float32Array, Float32Array];
  private readonly scratch: [Uint8Array, Uint8Array];
  private position = 0;
  private pending: Promise<void> | null = null;

  constructor(
    private readonly cache: ImageCache,
    private readonly batches: readonly ArrayLike<number>[],
    reuse?: CachedBatchReader,
  ) {
    const largest = batches.reduce((m, b) => Math.max(m, b.length), 0);
    const floats = largest * cache.imageSize;
    if (reuse && reuse.cache === cache && reuse.buffers[0].length >= floats) {
      this.buffers = reuse.buffers;
      this.scratch = reuse.scratch;
    } else {
      this.buffers = [new Float32Array(floats), new Float32Array(floats)];
      this.scratch = [new Uint8Array(floats), new Uint8Array(floats)];
    }
    this.pending = this.start(0);
  }

  /**
   * Waits for the read in flight, if any (its result is dropped): call before closing the cache
   * or lending this reader's buffers to another when stopping before the last batch.
   */
  async settle(): Promise<void> {
    const pending = this.pending;
    this.pending = null;
    this.position = this.batches.length;
    await pending?.catch(() => undefined);
  }

  private start(k: number): Promise<void> | null {
    if (k >= this.batches.length) return null;
    const slot = k % 2;
    const read = this.cache.readRows(this.batches[k], this.buffers[slot], 0, this.scratch[slot]);
    // a reader dropped before its next batch must not leave an unhandled rejection; next() still throws
    read.catch(() => undefined);
    return read;
  }

  /** The next batch, or null after the last; starts reading the one after it. */
  async next(): Promise<CachedBatch | null> {
    const k = this.position;
    if (k >= this.batches.length || this.pending === null) return null;
    const t0 = performance.now();
    await this.pending;
    const waitedMs = performance.now() - t0;
    this.position++;
    this.pending = this.start(k + 1);
    const indices = this.batches[k];
    return {
      inputs: this.buffers[k % 2].subarray(0, indices.length * this.cache.imageSize),
      indices,
      batch: k,
      waitedMs,
    };
  }
}

async function readHeader(path: string): Promise<CacheHeader | null> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as CacheHeader;
    return value && value.format === FORMAT ? value : null;
  } catch {
    return null;
  }
}

/** sha256 of the format, the decode options and every file's path, size and mtime. */
/** The key of `files` (each one's path, size and mtime) decoded with `decode`: what names a cache. */
export async function cacheKey(
  fn: string,
  files: readonly string[],
  decode: ResolvedDecodeOptions,
): Promise<string> {
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify([
      FORMAT,
      decode.height,
      decode.width,
      decode.channels,
      decode.minSourceSize,
      files.length,
      // only when set, so caches built before these options keep their keys
      ...(decode.fit !== 'stretch' || decode.background ? [decode.fit, decode.background] : []),
      ...(decode.resampler === 'portable' ? ['portable'] : []),
    ]),
  );
  const chunk = 256;
  for (let start = 0; start < files.length; start += chunk) {
    const part = files.slice(start, start + chunk);
    const infos = await Promise.all(part.map((f) => stat(f).catch(() => null)));
    infos.forEach((info, k) => {
      if (!info?.isFile())
        throw new ContrastiveError(
          `${fn}: image ${part[k]} (number ${start + k}) ${info ? 'is not a file' : 'does not exist'}.`,
        );
      hash.update(`\n${part[k]}\u0000${info.size}\u0000${info.mtimeMs}`);
    });
  }
  return hash.digest('hex');
}

/** Decodes every file into a temporary file at its row's offset, then renames it into place. */
async function buildCacheFile(
  files: readonly string[],
  decode: ResolvedDecodeOptions,
  dataPath: string,
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<void> {
  const temp = `${dataPath}.${process.pid}-${Date.now()}.tmp`;
  const handle = await open(temp, 'w');
  const size = decode.height * decode.width * decode.channels;
  const writes = new Set<Promise<unknown>>();
  let done = 0;
  const step = Math.max(1, Math.floor(files.length / 100));
  let failure: ContrastiveError | null = null;
  try {
    await handle.truncate(files.length * size);
    await decodeAll(
      files,
      decode,
      (i, pixels) => {
        const write = handle.write(pixels, 0, size, i * size).then(() => {
          writes.delete(write);
          done++;
          if (onProgress && (done % step === 0 || done === files.length)) onProgress(done, files.length);
        });
        writes.add(write);
      },
      (i, reason) => {
        failure ??= new ContrastiveError(`ImageCache.open: cannot decode ${files[i]}: ${reason}.`);
        throw failure;
      },
    );
    await Promise.all(writes);
    await handle.close();
    await rename(temp, dataPath);
  } catch (error) {
    await Promise.allSettled(writes);
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw failure ?? error;
  }
}
