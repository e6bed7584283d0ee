import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { type ColorAugmentOptions, colorAugment } from '../data/colorAugment.js';
import { dataKind, listTrainingImages, loadTrainingData, type TrainingSplit } from '../data/dataset.js';
import { cacheKey } from '../data/imageCache.js';
import { decodeAll, type ResolvedDecodeOptions, resolveDecodeOptions } from '../data/imageDecode.js';
import type { RunData, RunDataOptions } from '../data/runData.js';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { FeatureExtractor } from '../models/featureExtractor.js';
import { Rng } from '../random.js';

const FORMAT = 'tfjs-contrastive/feature-cache@1';
/** Images run through the backbone at once. */
const CHUNK = 32;
/** Rows per checksummed block of a cache file. */
const BLOCK_ROWS = 1024;

/** Options of {@link loadFeatureRunData}. */
export interface FeatureRunDataOptions extends Omit<RunDataOptions, 'stream' | 'onDecodeProgress'> {
  extractor: FeatureExtractor;
  /** Augmented views per training image to cache besides the clean one (0: none). */
  featureViews: number;
  /** The augmentation of those views (SimCLR's colour set), at the backbone's input size. */
  augment: ColorAugmentOptions;
  /** Called as features are computed: (split, images done, images in the split). */
  onProgress?: (split: 'train' | 'test', done: number, total: number) => void;
}

/** The sidecar of a feature cache file: what it holds and a checksum per block of rows. */
interface FeatureCacheHeader {
  format: typeof FORMAT;
  key: string;
  rows: number;
  /** Vectors per row: 1 + the augmented views. */
  vectors: number;
  dim: number;
  blockRows: number;
  blockSha256: string[];
}

/**
 * A run's data as frozen-backbone features: every image of both splits decoded exactly as the
 * backbone's preprocessing says and run through it once (and, for the training split, K augmented
 * views of it), into a cache file beside the image cache. The result is a table of features —
 * `inputShape: [featureDim]` — that trains a head in seconds per epoch; a training split with views
 * carries them as `views` (`[N, K, D]`), and the trainer draws one per sample and view.
 *
 * The cache is keyed on the backbone's checksum, output, pooling and preprocessing, the images
 * (path, size, mtime) and the views' seed and augmentation: anything else builds a new one. It is
 * written in blocks with a checksum each and resumed after an interruption from the last whole
 * chunk; a damaged file is an error naming it, never silently reused.
 */
export async function loadFeatureRunData(options: FeatureRunDataOptions): Promise<RunData> {
  const fn = 'train';
  const { extractor } = options;
  const kind = await dataKind(options);
  if (kind === 'table')
    throw new ContrastiveError(
      `${fn}: --backbone ${extractor.path} is an image model, but --data ${options.data} is a feature table; pass an image folder, a manifest or fashion-mnist.`,
    );
  const [height, width] = extractor.preprocessing.size;
  const decode = resolveDecodeOptions(fn, {
    size: [height, width],
    channels: 3,
    fit: extractor.preprocessing.fit,
    background: extractor.preprocessing.background,
    resampler: extractor.preprocessing.resampler ?? 'libvips',
    minSourceSize: options.minImageSize,
  });
  const identity = JSON.stringify([
    FORMAT,
    extractor.sha256,
    extractor.output,
    extractor.pooling,
    extractor.preprocessing,
  ]);
  await mkdir(options.cacheDir, { recursive: true });

  // both splits' images and labels, from memory (Fashion-MNIST) or from their files
  const source =
    kind === 'fashion-mnist'
      ? await imagesInMemory(options, height, width)
      : await imageFiles(options, decode);
  const train = await featureSplit(options, identity, 'train', source.train);
  const test = await featureSplit(options, identity, 'test', source.test);
  return {
    kind: 'table',
    inputShape: [extractor.featureDim],
    train,
    test,
    tree: source.tree,
    source: `${source.source}; ${extractor.kind} backbone ${extractor.path} frozen, ${extractor.featureDim} features per image (computed once, cached)`,
    heldOut: source.heldOut,
    warnings: source.warnings,
    frozenBackbone: { path: extractor.path, featureDim: extractor.featureDim },
  };
}

/** The images of both splits and what the run needs besides them. */
interface SplitImages extends Pick<RunData, 'tree' | 'source' | 'heldOut' | 'warnings'> {
  train: ImageSource;
  test: ImageSource;
}

/** Images already in memory (Fashion-MNIST, grey): stretched to the backbone's size, grey copied to RGB. */
async function imagesInMemory(
  options: FeatureRunDataOptions,
  height: number,
  width: number,
): Promise<SplitImages> {
  const data = await loadTrainingData(options);
  const [h, w, c] = data.inputShape;
  const size = h * w * c;
  const fromMemory = (split: TrainingSplit): ImageSource => ({
    count: split.size,
    labels: split.labels,
    key: createHash('sha256').update(split.inputs).digest('hex'),
    read: async (start, end) =>
      tf.tidy(() => {
        const x = tf.tensor4d(split.inputs.subarray(start * size, end * size), [end - start, h, w, c]);
        const resized = h === height && w === width ? x : tf.image.resizeBilinear(x, [height, width]);
        return (c === 1 ? tf.tile(resized, [1, 1, 1, 3]) : resized) as tf.Tensor4D;
      }),
  });
  return { ...data, train: fromMemory(data.train), test: fromMemory(data.test) };
}

/** An image folder's or manifest's files, decoded chunk by chunk as the backbone's preprocessing says. */
async function imageFiles(
  options: FeatureRunDataOptions,
  decode: ResolvedDecodeOptions,
): Promise<SplitImages> {
  const listing = await listTrainingImages(options);
  const fromFiles = async (split: { files: string[]; labels: Int32Array }): Promise<ImageSource> => ({
    count: split.files.length,
    labels: split.labels,
    key: split.files.length === 0 ? 'empty' : await cacheKey('train', split.files, decode),
    read: (start, end) => decodeChunk(split.files.slice(start, end), decode),
  });
  return { ...listing, train: await fromFiles(listing.train), test: await fromFiles(listing.test) };
}

/** Decodes image files as the backbone's preprocessing says: `[n, h, w, 3]` in [0, 1]. */
async function decodeChunk(files: readonly string[], decode: ResolvedDecodeOptions): Promise<tf.Tensor4D> {
  const size = decode.height * decode.width * 3;
  const pixels = new Float32Array(files.length * size);
  await decodeAll(
    files,
    decode,
    (i, bytes) => {
      for (let k = 0; k < size; k++) pixels[i * size + k] = bytes[k] / 255;
    },
    (i, reason) => {
      throw new ContrastiveError(`train: cannot decode image ${files[i]}: ${reason}.`);
    },
  );
  return tf.tensor4d(pixels, [files.length, decode.height, decode.width, 3]);
}

interface ImageSource {
  count: number;
  /** `[count, L]` label rows. */
  labels: Int32Array;
  /** Identifies the images (paths, sizes, mtimes, or the pixels). */
  key: string;
  /** Images `[start, end)` as `[n, h, w, 3]` in [0, 1]. */
  read(start: number, end: number): Promise<tf.Tensor4D>;
}

/** One split's features from its cache file, computing (or finishing) the file first when needed. */
async function featureSplit(
  options: FeatureRunDataOptions,
  identity: string,
  split: 'train' | 'test',
  images: ImageSource,
): Promise<TrainingSplit> {
  const views = split === 'train' ? options.featureViews : 0;
  const vectors = 1 + views;
  const dim = options.extractor.featureDim;
  const key = createHash('sha256')
    .update(identity)
    .update(
      JSON.stringify([
        split,
        images.key,
        images.count,
        views,
        views > 0 ? [options.seed ?? 0, options.augment] : null,
      ]),
    )
    .digest('hex');
  const base = join(options.cacheDir, `features-${key.slice(0, 16)}`);
  const all = await readOrComputeFeatures(options, base, key, split, images, vectors, dim);
  const { labels } = images;
  if (views === 0) return { inputs: all, labels, size: images.count };
  const rowFloats = vectors * dim;
  const clean = new Float32Array(images.count * dim);
  for (let r = 0; r < images.count; r++) clean.set(all.subarray(r * rowFloats, r * rowFloats + dim), r * dim);
  const augmented = new Float32Array(images.count * views * dim);
  for (let r = 0; r < images.count; r++)
    augmented.set(all.subarray(r * rowFloats + dim, (r + 1) * rowFloats), r * views * dim);
  return { inputs: clean, labels, size: images.count, views: { count: views, inputs: augmented } };
}

async function readOrComputeFeatures(
  options: FeatureRunDataOptions,
  base: string,
  key: string,
  split: 'train' | 'test',
  images: ImageSource,
  vectors: number,
  dim: number,
): Promise<Float32Array> {
  const dataPath = `${base}.f32`;
  const headerPath = `${base}.json`;
  const rowBytes = vectors * dim * 4;
  const header = await readFile(headerPath, 'utf8')
    .then((t) => JSON.parse(t) as FeatureCacheHeader)
    .catch(() => null);
  if (header && header.format === FORMAT && header.key === key) {
    const bytes = await readFile(dataPath).catch(() => null);
    if (bytes && bytes.length === header.rows * rowBytes && verifyBlocks(bytes, header, rowBytes))
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    throw new ContrastiveError(
      `train: the feature cache ${dataPath} is damaged (its size or a block checksum does not match ${headerPath}); delete both files and run again to recompute it.`,
    );
  }
  // compute, resuming a partial file from its last whole chunk
  const partial = `${dataPath}.partial`;
  const have = await stat(partial).catch(() => null);
  const resumeChunkRows = have ? Math.floor(have.size / rowBytes / CHUNK) * CHUNK : 0;
  const handle = await open(partial, have ? 'r+' : 'w');
  try {
    await handle.truncate(resumeChunkRows * rowBytes);
    const rows = new Float32Array(CHUNK * vectors * dim);
    for (let start = resumeChunkRows; start < images.count; start += CHUNK) {
      const end = Math.min(images.count, start + CHUNK);
      const n = end - start;
      const pixels = await images.read(start, end);
      try {
        // view v of a chunk has its own seed: a resumed build draws the same views
        for (let v = 0; v < vectors; v++) {
          const input =
            v === 0
              ? pixels
              : colorAugment(
                  pixels,
                  new Rng(((options.seed ?? 0) * 1000003 + start * 131 + v) >>> 0),
                  options.augment,
                );
          const features = await options.extractor.extract(input).finally(() => {
            if (input !== pixels) input.dispose();
          });
          const values = await features.data();
          features.dispose();
          for (let r = 0; r < n; r++) {
            const row = values.subarray(r * dim, (r + 1) * dim);
            for (let k = 0; k < dim; k++)
              if (!Number.isFinite(row[k]))
                throw new ContrastiveError(
                  `train: backbone ${options.extractor.path} gave a non-finite feature for ${split} image ${start + r}; check the model and its preprocessing.`,
                );
            rows.set(row, (r * vectors + v) * dim);
          }
        }
      } finally {
        pixels.dispose();
      }
      await handle.write(new Uint8Array(rows.buffer, 0, n * rowBytes), 0, n * rowBytes, start * rowBytes);
      options.onProgress?.(split, end, images.count);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  const bytes = await readFile(partial);
  const done: FeatureCacheHeader = {
    format: FORMAT,
    key,
    rows: images.count,
    vectors,
    dim,
    blockRows: BLOCK_ROWS,
    blockSha256: blockHashes(bytes, BLOCK_ROWS * rowBytes),
  };
  await rename(partial, dataPath);
  await writeFileAtomic(headerPath, `${JSON.stringify(done)}\n`).catch(async (error: unknown) => {
    await rm(dataPath, { force: true });
    throw error;
  });
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

function blockHashes(bytes: Uint8Array, blockBytes: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < bytes.length; at += blockBytes)
    out.push(
      createHash('sha256')
        .update(bytes.subarray(at, at + blockBytes))
        .digest('hex'),
    );
  return out;
}

function verifyBlocks(bytes: Uint8Array, header: FeatureCacheHeader, rowBytes: number): boolean {
  const hashes = blockHashes(bytes, header.blockRows * rowBytes);
  return hashes.length === header.blockSha256.length && hashes.every((h, i) => h === header.blockSha256[i]);
}
