import { ContrastiveError } from '../errors.js';
import {
  dataKind,
  imageShape,
  listTrainingImages,
  loadTrainingData,
  type TrainingData,
  type TrainingDataOptions,
  type TrainingSplit,
} from './dataset.js';
import { ImageCache } from './imageCache.js';

/**
 * One split whose images stay on disk: decoded once into the uint8 {@link ImageCache} (row r of
 * the cache is row r of the split) and read by row index, so memory does not grow with the split.
 */
export interface CachedSplit {
  /** The decoded images, `size` rows of `H × W × C` bytes. */
  cache: ImageCache;
  /** `[N, L]` label rows, coarsest first. */
  labels: Int32Array;
  size: number;
}

/** A split in memory ({@link TrainingSplit}) or in the image cache ({@link CachedSplit}). */
export type DataSplit = TrainingSplit | CachedSplit;

/**
 * The data of a training run: a {@link TrainingData} whose splits may each be in memory or in
 * the image cache. Read rows with {@link readSplitRows}; release it with {@link closeRunData}.
 */
export interface RunData extends Omit<TrainingData, 'train' | 'test'> {
  train: DataSplit;
  test: DataSplit;
  /**
   * Set when the inputs are a frozen pretrained backbone's features (`run/featureData.ts`): the
   * trainer then builds a head on them instead of an image encoder.
   */
  frozenBackbone?: { path: string; featureDim: number };
}

/** `--stream`: whether image data is read through the cache or into memory. */
export type StreamMode = 'auto' | 'on' | 'off';

/**
 * `--stream auto` streams an image folder or manifest when its training split as float32 would
 * take more than this (1 GiB: about 21,800 images of 64 × 64 × 3, 340,000 of 28 × 28 × 1).
 */
export const STREAM_AUTO_BYTES = 2 ** 30;

/** Options of {@link loadRunData}: the data options, how to read them, and where the cache goes. */
export interface RunDataOptions extends TrainingDataOptions {
  /** Default `'auto'` (see {@link STREAM_AUTO_BYTES}). */
  stream?: StreamMode;
  /** Folder of the image cache files, used when streaming (created if missing). */
  cacheDir: string;
  /** Called while a split's cache is built (images decoded, total), for a progress line. */
  onDecodeProgress?: (split: 'train' | 'test', done: number, total: number) => void;
  /** Aborting it stops an image cache being built (an error; nothing half-written is kept). */
  signal?: AbortSignal;
}

/** True when the split's rows are in the image cache rather than in memory. */
export function isCachedSplit(split: DataSplit): split is CachedSplit {
  return 'cache' in split;
}

/** True when the training split is streamed from the image cache. */
export function isStreamed(data: RunData): boolean {
  return isCachedSplit(data.train) || isCachedSplit(data.test);
}

/**
 * The data of a run as `options` say: {@link loadTrainingData} (everything in memory), or, when
 * streaming, the same dataset — same label tree, same split, same rows in the same order, as
 * {@link listTrainingImages} guarantees — with both splits' images decoded once into uint8 cache
 * files in `cacheDir` (reused while the sources and decode options are unchanged) and read per
 * batch. Streaming applies to image folders and manifests; `stream: 'on'` with Fashion-MNIST or
 * a table is an error, `'auto'` reads those into memory.
 */
export async function loadRunData(options: RunDataOptions): Promise<RunData> {
  const mode = options.stream ?? 'auto';
  if (mode !== 'auto' && mode !== 'on' && mode !== 'off')
    throw new ContrastiveError(`train: --stream must be auto, on or off, but got ${JSON.stringify(mode)}.`);
  if (mode === 'off') return loadTrainingData(options);
  const kind = await dataKind(options);
  if (kind !== 'image-folder' && kind !== 'image-manifest') {
    if (mode === 'on')
      throw new ContrastiveError(
        `train: --stream on streams image folders and manifests, but --data ${options.data} is ${kind === 'table' ? 'a feature table' : 'Fashion-MNIST'}, which is read into memory; pass --stream auto or off.`,
      );
    return loadTrainingData(options);
  }
  const listing = await listTrainingImages(options);
  const imageBytes = listing.inputShape.reduce((a, b) => a * b, 1);
  const trainBytes = listing.train.size * imageBytes * 4;
  if (mode === 'auto' && trainBytes <= STREAM_AUTO_BYTES) return loadTrainingData(options);
  if (options.skipUnreadable)
    throw new ContrastiveError(
      `train: --skip-unreadable cannot be used while streaming (--stream ${mode}${mode === 'auto' ? `: the training split would take ${(trainBytes / 2 ** 30).toFixed(1)} GiB as float32` : ''}); remove the unreadable files, or pass --stream off to read everything into memory.`,
    );
  const [size, , channels] = listing.inputShape;
  const { background } = imageShape(options);
  const open = async (split: 'train' | 'test'): Promise<DataSplit> => {
    const { files, labels, size: rows } = listing[split];
    if (rows === 0) return { inputs: new Float32Array(0), labels, size: 0 };
    const cache = await ImageCache.open(files, {
      cacheDir: options.cacheDir,
      size: [size, size],
      channels: channels as 1 | 3,
      background,
      minSourceSize: options.minImageSize,
      onProgress:
        options.onDecodeProgress && ((done, total) => options.onDecodeProgress?.(split, done, total)),
      signal: options.signal,
    });
    if (cache.damaged)
      listing.warnings.push(
        `the ${split} image cache ${cache.path} was damaged (${cache.damaged}); it was rebuilt.`,
      );
    return { cache, labels, size: rows };
  };
  const train = await open('train');
  const test = await open('test').catch(async (error: unknown) => {
    if (isCachedSplit(train)) await train.cache.close();
    throw error;
  });
  return {
    kind: 'image',
    inputShape: listing.inputShape,
    train,
    test,
    tree: listing.tree,
    source: `${listing.source}; streamed from the image cache in ${options.cacheDir}`,
    heldOut: listing.heldOut,
    warnings: listing.warnings,
  };
}

/**
 * Reads the rows `indices` of a split (floats, `[n, ...inputShape]` row-major, the values
 * {@link loadTrainingData} holds) into `out` from `offset`. `scratch` (cached splits: at least
 * `indices.length` rows of bytes) avoids an allocation.
 */
export async function readSplitRows(
  split: DataSplit,
  rowSize: number,
  indices: ArrayLike<number>,
  out: Float32Array,
  offset = 0,
  scratch?: Uint8Array,
): Promise<void> {
  if (isCachedSplit(split)) return split.cache.readRows(indices, out, offset, scratch);
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r];
    out.set(split.inputs.subarray(i * rowSize, (i + 1) * rowSize), offset + r * rowSize);
  }
}

/** Closes the cache files of a run's cached splits (nothing to do for data in memory). */
export async function closeRunData(data: RunData): Promise<void> {
  const caches = [data.train, data.test].filter(isCachedSplit).map((s) => s.cache);
  await Promise.all([...new Set(caches)].map((c) => c.close()));
}
