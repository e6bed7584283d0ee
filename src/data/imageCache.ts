import { createHash } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ContrastiveError, check } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { crc32 } from '../io/checksum.js';
import { faultPoint } from '../io/faults.js';
import { describeFsError } from '../io/fsErrors.js';
import {
  decodeAll,
  type ImageDecodeOptions,
  type ResolvedDecodeOptions,
  resolveDecodeOptions,
} from './imageDecode.js';

/** The header's format: @2 adds a CRC-32 per image (an @1 cache, with none, is rebuilt). */
const FORMAT = 'tfjs-contrastive/image-cache@2';
/** What the cache key (and so the file name) is computed with: unchanged since @1. */
const KEY_FORMAT = 'tfjs-contrastive/image-cache@1';

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
  /** Aborting it stops a cache being built (an error; the temporary file is removed). */
  signal?: AbortSignal;
}

/** The sidecar that describes (and validates) a cache file. */
interface CacheHeader {
  format: typeof FORMAT;
  key: string;
  count: number;
  height: number;
  width: number;
  channels: number;
  /** CRC-32 of every image's bytes (a block per image), little-endian uint32s in base64. */
  crc32: string;
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
    /** The CRC-32 of every image's bytes, checked on every read. */
    private readonly checksums: Uint32Array,
    /**
     * Why an existing cache of the same images was not reused but rebuilt because it was
     * damaged (e.g. `image 12 does not match its checksum`); undefined otherwise.
     */
    readonly damaged?: string,
  ) {}

  /** Bytes (and floats) per image: `H × W × C`. */
  get imageSize(): number {
    return this.height * this.width * this.channels;
  }

  /**
   * Opens the cache of `files` (in this order), building it when missing or stale. A file that
   * cannot be decoded is an error naming it; a stale cache is replaced atomically. A reused cache
   * is verified image by image against the CRC-32s written with it, and rebuilt when one differs
   * ({@link ImageCache.damaged} says why). A write that fails (ENOSPC, EIO) is one error naming
   * the file and the bytes it needs; the temporary file is removed.
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
    const imageBytes = decode.height * decode.width * decode.channels;
    const existing = await readHeader(headerPath);
    const dataInfo = await stat(dataPath).catch(() => null);
    let checksums =
      existing !== null &&
      existing.key === key &&
      dataInfo !== null &&
      dataInfo.size === files.length * imageBytes
        ? decodeChecksums(existing.crc32, files.length)
        : null;
    let damaged: string | undefined;
    if (checksums) {
      damaged = await verifyCacheFile(dataPath, imageBytes, checksums);
      if (damaged) checksums = null;
    }
    const reusable = checksums !== null;
    if (!checksums) {
      await rm(headerPath, { force: true });
      checksums = await buildCacheFile(files, decode, dataPath, options.onProgress, options.signal);
      const header: CacheHeader = {
        format: FORMAT,
        key,
        count: files.length,
        height: decode.height,
        width: decode.width,
        channels: decode.channels,
        crc32: Buffer.from(checksums.buffer, checksums.byteOffset, checksums.byteLength).toString('base64'),
      };
      try {
        await writeFileAtomic(headerPath, `${JSON.stringify(header, null, 1)}\n`);
      } catch (error) {
        // a data file without its header is never reused: remove it rather than leave it filling the disk
        await rm(dataPath, { force: true });
        throw await writeFailure(headerPath, error, header.crc32.length + 256);
      }
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
      checksums,
      damaged,
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
    try {
      await Promise.all(reads);
    } catch (error) {
      throw new ContrastiveError(`cannot read the image cache ${this.path}: ${describeFsError(error)}.`);
    }
    for (let r = 0; r < indices.length; r++) {
      const i = indices[r];
      const actual = crc32(bytes, r * size, (r + 1) * size);
      if (actual !== this.checksums[i])
        throw new ContrastiveError(
          `the image cache ${this.path} is damaged: image ${i} does not match the checksum written with it; delete the file (or its cache folder) and run again to rebuild it.`,
        );
    }
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
    return value && value.format === FORMAT && typeof value.crc32 === 'string' ? value : null;
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
      KEY_FORMAT,
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

/** The checksums of a header, or null when they do not hold one per image. */
function decodeChecksums(base64: string, count: number): Uint32Array | null {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length !== count * 4) return null;
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = bytes.readUInt32LE(i * 4);
  return out;
}

/** Reads the whole data file once: undefined when every image matches its CRC-32, else why not. */
async function verifyCacheFile(
  path: string,
  imageBytes: number,
  checksums: Uint32Array,
): Promise<string | undefined> {
  const perChunk = Math.max(1, Math.floor((8 * 2 ** 20) / imageBytes));
  const buffer = new Uint8Array(perChunk * imageBytes);
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    return `it cannot be read: ${describeFsError(error)}`;
  }
  try {
    for (let first = 0; first < checksums.length; first += perChunk) {
      const n = Math.min(perChunk, checksums.length - first);
      const { bytesRead } = await handle.read(buffer, 0, n * imageBytes, first * imageBytes);
      if (bytesRead !== n * imageBytes)
        return `it ends at image ${first + Math.floor(bytesRead / imageBytes)}`;
      for (let r = 0; r < n; r++)
        if (crc32(buffer, r * imageBytes, (r + 1) * imageBytes) !== checksums[first + r])
          return `image ${first + r} does not match its checksum`;
    }
    return undefined;
  } catch (error) {
    return `it cannot be read: ${describeFsError(error)}`;
  } finally {
    await handle.close();
  }
}

/** One line for a failed cache write: the path, why, the bytes it needs and (when known) what is free. */
async function writeFailure(path: string, error: unknown, needed: number): Promise<ContrastiveError> {
  const free = await statfs(dirname(path))
    .then((s) => s.bavail * s.bsize)
    .catch(() => null);
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return new ContrastiveError(
    `cannot write the image cache ${path}: ${describeFsError(error)}; it needs ${needed} bytes (${mib(needed)})${free === null ? '' : `, ${mib(free)} are free there`}. Nothing was left behind; free space or pass --cache-dir on another disk.`,
  );
}

/**
 * Decodes every file into a temporary file at its row's offset, then renames it into place;
 * returns the CRC-32 of every image. A failed write stops the decoding and removes the file.
 */
async function buildCacheFile(
  files: readonly string[],
  decode: ResolvedDecodeOptions,
  dataPath: string,
  onProgress: ((done: number, total: number) => void) | undefined,
  signal: AbortSignal | undefined,
): Promise<Uint32Array> {
  const temp = `${dataPath}.${process.pid}-${Date.now()}.tmp`;
  const size = decode.height * decode.width * decode.channels;
  const needed = files.length * size;
  let handle: FileHandle;
  try {
    handle = await open(temp, 'w');
  } catch (error) {
    throw await writeFailure(temp, error, needed);
  }
  const checksums = new Uint32Array(files.length);
  const writes = new Set<Promise<unknown>>();
  let done = 0;
  const step = Math.max(1, Math.floor(files.length / 100));
  let failure: ContrastiveError | null = null;
  let writeError: unknown = null;
  try {
    try {
      await handle.truncate(needed);
    } catch (error) {
      writeError = error;
      throw error;
    }
    await decodeAll(
      files,
      decode,
      (i, pixels) => {
        // a write failed: stop decoding (decodeAll stops at the first throw)
        if (writeError !== null) throw writeError;
        checksums[i] = crc32(pixels, 0, size);
        const write = (async () => {
          faultPoint('image-cache-write');
          await handle.write(pixels, 0, size, i * size);
        })().then(
          () => {
            writes.delete(write);
            done++;
            if (onProgress && (done % step === 0 || done === files.length)) onProgress(done, files.length);
          },
          (error: unknown) => {
            writes.delete(write);
            writeError ??= error;
          },
        );
        writes.add(write);
      },
      (i, reason) => {
        failure ??= new ContrastiveError(`ImageCache.open: cannot decode ${files[i]}: ${reason}.`);
        throw failure;
      },
      signal,
    );
    await Promise.all(writes);
    if (writeError !== null) throw writeError;
    try {
      await handle.sync();
      await handle.close();
      await rename(temp, dataPath);
    } catch (error) {
      writeError ??= error;
      throw error;
    }
    return checksums;
  } catch (error) {
    await Promise.allSettled(writes);
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    if (failure) throw failure;
    if (writeError !== null) throw await writeFailure(dataPath, writeError, needed);
    throw error;
  }
}
