import { constants, createReadStream } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import { ContrastiveError } from '../errors.js';
import { evenLabelPaths } from './dataset.js';
import { fashionMnistFiles, fashionMnistTree, locateFashionMnist } from './fashionMnist.js';
import { readFeatureTable } from './featureTable.js';
import { readIdx } from './idx.js';
import { ImageCache } from './imageCache.js';
import { decodeAll, type ImageFit, type ImageResampler, resolveDecodeOptions } from './imageDecode.js';
import { listImageFolder } from './imageFolder.js';
import { readManifest } from './manifest.js';
import type { DataSource } from './sources.js';

/** One row of a {@link SourceRows}: what an index or an embeddings file keeps beside its vector. */
export interface SourceItem {
  /** Unique within the source: a row number, or an image path relative to the folder / manifest. */
  id: string;
  /** Label path, coarsest first (short paths padded by repeating their leaf, as training does); null when unlabelled. */
  label: string[] | null;
  /** Where the row came from (an image file, `fashion-mnist:train#12`, `items.csv#3`). */
  source: string;
}

/** One batch of a {@link SourceRows}. */
export interface SourceBatch {
  /** Row number of the first row of the batch. */
  start: number;
  /** `[rows, ...shape]` floats (images in [0, 1]); valid until the next batch is asked for. */
  inputs: Float32Array;
  rows: number;
}

/** A source's rows, read in order in batches with memory bounded by the batch size. */
export interface SourceRows {
  count: number;
  /** Shape of one row as read: `[h, w, c]` images or `[D]` table rows. */
  shape: number[];
  /** True for images. */
  images: boolean;
  items: SourceItem[];
  /** The rows in order, `batchSize` at a time (the last batch may be shorter). */
  batches(batchSize: number): AsyncGenerator<SourceBatch>;
  /** Closes the image cache, if any. */
  close(): Promise<void>;
}

/** Options of {@link openSourceRows}: how images are decoded (those of the model that reads them). */
export interface SourceRowsOptions {
  /** `[h, w, c]` every image file is decoded to; null when the reader takes vectors (an image source is then an error). */
  image: readonly [number, number, number] | null;
  /** Decoding as training did (the run's background, fit and, for a frozen backbone, its resampler). */
  decode?: {
    background?: readonly [number, number, number] | null;
    fit?: ImageFit;
    resampler?: ImageResampler;
  };
  /** Folder of the image cache (image files are decoded once into it and read per batch). */
  cacheDir: string;
  /** The first `limit` rows only. */
  limit?: number;
  /** Called while the image cache is built (images decoded, total). */
  onDecodeProgress?: (done: number, total: number) => void;
  /** Names the caller in errors. Default `openSourceRows`. */
  fn?: string;
}

/**
 * Opens a {@link DataSource} for reading in batches: image files (a folder, a manifest, loose
 * images) are decoded once into the uint8 {@link ImageCache} with the given size, channels,
 * background and fit (training's decoder) and read from it a batch at a time; Fashion-MNIST is
 * streamed from its IDX file; a table is read into memory (its rows are already vectors). Labels
 * are those training reads from the same source.
 */
export async function openSourceRows(source: DataSource, options: SourceRowsOptions): Promise<SourceRows> {
  const fn = options.fn ?? 'openSourceRows';
  const limit = options.limit;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1))
    throw new ContrastiveError(`${fn}: limit must be an integer >= 1, but got ${limit}.`);
  const cap = <T>(list: T[]) => (limit !== undefined && list.length > limit ? list.slice(0, limit) : list);
  switch (source.kind) {
    case 'fashion-mnist':
      return fashionMnistRows(fn, source, limit);
    case 'table': {
      const { kind: _kind, path, ...tableOptions } = source;
      const table = await readFeatureTable(path, tableOptions);
      const count = Math.min(table.numRows, limit ?? table.numRows);
      const dim = table.dim;
      const items = cap(table.paths).map((label, i) => ({
        id: String(i),
        label,
        source: `${path}#${i + 1}`,
      }));
      return {
        count,
        shape: [dim],
        images: false,
        items,
        async *batches(batchSize) {
          for (let start = 0; start < count; start += batchSize) {
            const end = Math.min(count, start + batchSize);
            yield { start, rows: end - start, inputs: table.features.subarray(start * dim, end * dim) };
          }
        },
        close: async () => undefined,
      };
    }
    case 'image-folder': {
      const listing = await listImageFolder(source.path, { pad: 'keep' });
      const labels = evenLabelPaths(listing.paths, 'repeat-leaf', source.path).paths;
      const items = listing.files.map((file, i) => ({
        id: relative(source.path, file).split(sep).join('/'),
        label: labels[i],
        source: file,
      }));
      return cachedRows(fn, cap(items), options);
    }
    case 'image-manifest': {
      const { kind: _kind, path, ...manifestOptions } = source;
      const manifest = await readManifest(path, manifestOptions);
      const labels = evenLabelPaths(manifest.paths, 'repeat-leaf', path).paths;
      const base = dirname(resolve(path));
      const items = manifest.files.map((file, i) => ({
        id: relative(base, file).split(sep).join('/'),
        label: labels[i],
        source: file,
      }));
      return cachedRows(fn, cap(items), options);
    }
    case 'images': {
      if (source.files.length === 0)
        throw new ContrastiveError(`${fn}: files must list at least one image, but got none.`);
      return cachedRows(
        fn,
        cap(source.files.map((file) => ({ id: file, label: null, source: file }))),
        options,
      );
    }
    default:
      throw new ContrastiveError(
        `${fn}: source.kind must be fashion-mnist, image-folder, image-manifest, images or table, but got ${JSON.stringify((source as { kind: unknown }).kind)}.`,
      );
  }
}

/**
 * Sources of at most this many images are decoded straight into memory (one batch's worth)
 * instead of through the cache: a query or a handful of new items writes no cache file.
 */
export const IN_MEMORY_IMAGES = 256;

/**
 * Image files decoded once into the image cache and read from it in batches (double-buffered);
 * at most {@link IN_MEMORY_IMAGES} are decoded into memory, to the same values.
 */
async function cachedRows(fn: string, items: SourceItem[], options: SourceRowsOptions): Promise<SourceRows> {
  const image = options.image;
  if (!image)
    throw new ContrastiveError(`${fn}: the model takes feature vectors, not images; pass a feature table.`);
  const [h, w, c] = image;
  const files = items.map((it) => it.source);
  const decode = {
    size: [h, w] as const,
    channels: c === 3 ? (3 as const) : (1 as const),
    background: options.decode?.background ?? null,
    fit: options.decode?.fit,
    resampler: options.decode?.resampler,
  };
  const rows = { count: items.length, shape: [h, w, c], images: true, items };
  if (items.length <= IN_MEMORY_IMAGES) {
    const size = h * w * c;
    const inputs = new Float32Array(items.length * size);
    const resolved = resolveDecodeOptions(fn, decode);
    await decodeAll(
      files,
      resolved,
      (i, pixels) => {
        // the cache's conversion (ImageCache.readRows), so both paths give the same floats
        const scale = 1 / 255;
        for (let k = 0; k < size; k++) inputs[i * size + k] = pixels[k] * scale;
      },
      (i, reason) => {
        throw new ContrastiveError(`${fn}: cannot decode ${files[i]}: ${reason}.`);
      },
    );
    return {
      ...rows,
      async *batches(batchSize) {
        for (let start = 0; start < items.length; start += batchSize) {
          const end = Math.min(items.length, start + batchSize);
          yield { start, rows: end - start, inputs: inputs.subarray(start * size, end * size) };
        }
      },
      close: async () => undefined,
    };
  }
  try {
    await mkdir(options.cacheDir, { recursive: true });
    await access(options.cacheDir, constants.W_OK);
  } catch (error) {
    throw new ContrastiveError(
      `${fn}: cannot write the image cache in ${options.cacheDir} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); pass a writable folder as cacheDir (the CLI's --cache-dir).`,
    );
  }
  const cache = await ImageCache.open(files, {
    ...decode,
    cacheDir: options.cacheDir,
    onProgress: options.onDecodeProgress,
  });
  return {
    ...rows,
    async *batches(batchSize) {
      const list: Int32Array[] = [];
      for (let start = 0; start < items.length; start += batchSize)
        list.push(
          Int32Array.from({ length: Math.min(batchSize, items.length - start) }, (_, k) => start + k),
        );
      const reader = cache.batchReader(list);
      try {
        for (let b = await reader.next(); b; b = await reader.next())
          yield { start: b.indices[0], rows: b.indices.length, inputs: b.inputs };
      } finally {
        await reader.settle();
      }
    },
    close: () => cache.close(),
  };
}

/** A Fashion-MNIST split streamed from its IDX file (through gzip): a batch of pixels in memory at a time. */
async function fashionMnistRows(
  fn: string,
  source: Extract<DataSource, { kind: 'fashion-mnist' }>,
  limit: number | undefined,
): Promise<SourceRows> {
  const located = locateFashionMnist(source.split, source.dataDir);
  const files = fashionMnistFiles(located.dir, source.split);
  if (!files) throw new ContrastiveError(`${fn}: no Fashion-MNIST ${source.split} files in ${located.dir}.`);
  const labels = await readIdx(files.labels);
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1)
    throw new ContrastiveError(`${fn}: ${files.labels} must hold uint8 [N] labels, but has ${labels.dtype}.`);
  const count = Math.min(labels.shape[0], limit ?? labels.shape[0]);
  const tree = fashionMnistTree();
  const items: SourceItem[] = [];
  for (let i = 0; i < count; i++) {
    const c = labels.data[i];
    if (c > 9)
      throw new ContrastiveError(`${fn}: ${files.labels} record ${i} must be a class id 0-9, but got ${c}.`);
    items.push({ id: String(i), label: tree.path(2, c), source: `fashion-mnist:${source.split}#${i}` });
  }
  return {
    count,
    shape: [28, 28, 1],
    images: true,
    items,
    batches: (batchSize) => idxImageBatches(fn, files.images, labels.shape[0], count, batchSize),
    close: async () => undefined,
  };
}

/** The first `count` 28 × 28 images of an IDX file, `batchSize` at a time, as floats in [0, 1]. */
async function* idxImageBatches(
  fn: string,
  path: string,
  expected: number,
  count: number,
  batchSize: number,
): AsyncGenerator<SourceBatch> {
  const row = 784;
  const file = createReadStream(path);
  const stream = path.toLowerCase().endsWith('.gz') ? file.pipe(createGunzip()) : file;
  file.on('error', (error) => stream.destroy(error));
  const out = new Float32Array(batchSize * row);
  let header: Buffer | null = Buffer.alloc(0);
  let filled = 0; // values of `out` filled
  let start = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let bytes = chunk;
      if (header !== null) {
        header = Buffer.concat([header, bytes]);
        if (header.length < 16) continue;
        const magic = header.readUInt32BE(0);
        const n = header.readUInt32BE(4);
        if (
          magic !== 0x803 ||
          header.readUInt32BE(8) !== 28 ||
          header.readUInt32BE(12) !== 28 ||
          n !== expected
        )
          throw new ContrastiveError(
            `${fn}: ${path} must hold ${expected} uint8 [28, 28] images (IDX), but its header says otherwise.`,
          );
        bytes = header.subarray(16);
        header = null;
      }
      let k = 0;
      while (k < bytes.length && start + filled / row < count) {
        const rows = Math.min(batchSize, count - start);
        const take = Math.min(bytes.length - k, rows * row - filled);
        for (let j = 0; j < take; j++) out[filled + j] = bytes[k + j] / 255;
        filled += take;
        k += take;
        if (filled === rows * row) {
          yield { start, rows, inputs: out.subarray(0, filled) };
          start += rows;
          filled = 0;
        }
      }
      if (start >= count) return;
    }
  } catch (error) {
    if (error instanceof ContrastiveError) throw error;
    throw new ContrastiveError(`${fn}: cannot read ${path}: ${(error as Error).message}.`);
  } finally {
    stream.destroy();
    file.destroy();
  }
  if (start < count)
    throw new ContrastiveError(`${fn}: ${path} ends after ${start} of ${count} images: it looks cut off.`);
}
