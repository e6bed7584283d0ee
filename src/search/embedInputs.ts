import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  decodeFailure,
  decodeImage,
  type ImageDecodeOptions,
  resolveDecodeOptions,
} from '../data/imageDecode.js';
import { openSourceRows, type SourceRows } from '../data/sourceRows.js';
import type { DataSource } from '../data/sources.js';
import { ContrastiveError } from '../errors.js';
import type { EmbeddingSpace, IndexItemInput, ModelIdentity } from './embeddingIndex.js';
import { openRunEncoder, type RunEncoder } from './runModel.js';

/**
 * What to embed: a {@link DataSource} (`data/sources.ts`, resolved from `--data` by
 * `resolveDataSource`), read exactly as training reads it. A Fashion-MNIST source may carry its
 * own `limit` (the first N images), as {@link EmbedInputsOptions.limit} does for every kind.
 */
export type InputSource =
  | DataSource
  | { kind: 'fashion-mnist'; split: 'train' | 'test'; dataDir?: string; limit?: number };

/** Options of {@link embedInputs}. */
export interface EmbedInputsOptions {
  /** Which output to embed into when `run` is a folder. Default `'backbone'`. */
  space?: EmbeddingSpace;
  /** Inputs per forward pass. Default 256. */
  batchSize?: number;
  /** Called after every batch. */
  onProgress?: (done: number, total: number) => void;
  /** Store a small PNG `data:` URL of every image as its thumbnail. Default false. */
  thumbnails?: boolean;
  /** The first `limit` items only. */
  limit?: number;
  /**
   * Where image files are decoded once (the uint8 image cache) and read from a batch at a time.
   * Default: the run's `cache/` folder (where training streams its images too).
   */
  cacheDir?: string;
  /** Called while the image cache is built (images decoded, total). */
  onDecodeProgress?: (done: number, total: number) => void;
}

/** {@link embedInputs}'s result: rows ready for `EmbeddingIndex.add`. */
export interface EmbeddedInputs {
  /** `[count, dim]` row-major (not normalised). */
  embeddings: Float32Array;
  dim: number;
  count: number;
  /** One per row: id, label path when known, source file, thumbnail. */
  items: IndexItemInput[];
  space: EmbeddingSpace;
  model: ModelIdentity;
}

/**
 * Embeds any data with a trained run — a Fashion-MNIST split, an image folder, an image manifest,
 * image files or a feature table — in batches streamed from the source (image files are decoded
 * once into the image cache with the run's size, channels, background and fit, then read a batch
 * at a time, so memory is a few batches plus the embeddings), labels optional.
 *
 * @example
 * ```ts
 * const out = await embedInputs('runs/supcon', { kind: 'image-folder', path: 'catalogue/' });
 * index.add(out.items, out.embeddings);
 * ```
 */
export async function embedInputs(
  run: string | RunEncoder,
  source: InputSource,
  options: EmbedInputsOptions = {},
): Promise<EmbeddedInputs> {
  const fn = 'embedInputs';
  const batchSize = options.batchSize ?? 256;
  if (!(Number.isInteger(batchSize) && batchSize >= 1))
    throw new ContrastiveError(`${fn}: batchSize must be an integer >= 1, but got ${batchSize}.`);
  const encoder = typeof run === 'string' ? await openRunEncoder(run, options.space ?? 'backbone') : run;
  try {
    const sourceLimit = source.kind === 'fashion-mnist' && 'limit' in source ? source.limit : undefined;
    const limits = [sourceLimit, options.limit].filter((n): n is number => n !== undefined);
    const rows = await openSourceRows(source, {
      fn,
      image: imageShape(encoder.inputShape),
      decode: encoder.imageDecode,
      cacheDir: options.cacheDir ?? join(encoder.runDir, 'cache'),
      limit: limits.length > 0 ? Math.min(...limits) : undefined,
      onDecodeProgress: options.onDecodeProgress,
    });
    try {
      return await embedRows(fn, encoder, rows, batchSize, options);
    } finally {
      await rows.close();
    }
  } finally {
    if (typeof run === 'string') encoder.dispose();
  }
}

/** Embeds a source's rows batch by batch into one `[count, dim]` array. */
async function embedRows(
  fn: string,
  encoder: RunEncoder,
  rows: SourceRows,
  batchSize: number,
  options: EmbedInputsOptions,
): Promise<EmbeddedInputs> {
  const { inputShape } = encoder;
  const size = inputShape.reduce((a, b) => a * b, 1);
  const rowSize = rows.shape.reduce((a, b) => a * b, 1);
  // a frozen pretrained backbone takes colour images of its own size and resizes grey ones itself
  const pretrained = encoder.resizesImages === true && rows.images;
  if (!pretrained) {
    const what = rows.images
      ? `the images ([${rows.shape}])`
      : `${rows.items[0]?.source.replace(/#\d+$/, '') ?? 'the table'} (${rowSize} features per row)`;
    if (rowSize !== size)
      throw new ContrastiveError(
        `${fn}: the run's model takes inputs of shape [${inputShape}] (${size} values), but ${what} has ${rowSize}.`,
      );
  }
  const shape = pretrained ? rows.shape : inputShape;
  const image = rows.images ? (rows.shape as [number, number, number]) : null;
  const items: IndexItemInput[] = rows.items.map((it) => ({
    id: it.id,
    ...(it.label ? { label: it.label } : {}),
    source: it.source,
  }));
  let embeddings = new Float32Array(0);
  let dim = 0;
  for await (const batch of rows.batches(batchSize)) {
    const { start, rows: count } = batch;
    const input = tf.tensor(batch.inputs, [count, ...shape]);
    const out = await encoder.embedAsync(input).finally(() => input.dispose());
    if (dim === 0) {
      dim = out.shape[1];
      embeddings = new Float32Array(rows.count * dim);
    }
    const values = (await out.data()) as Float32Array;
    out.dispose();
    for (let k = 0; k < values.length; k++)
      if (!Number.isFinite(values[k]))
        throw new ContrastiveError(
          `${fn}: the model gave a non-finite embedding for item ${items[start + Math.floor(k / dim)]?.id ?? start} (its weights or the input are broken); nothing was written.`,
        );
    embeddings.set(values, start * dim);
    if (options.thumbnails && image)
      for (let r = 0; r < count; r++)
        items[start + r].thumbnail = await thumbnail(
          batch.inputs.subarray(r * rowSize, (r + 1) * rowSize),
          image,
        );
    options.onProgress?.(start + count, rows.count);
  }
  return { embeddings, dim, count: rows.count, items, space: encoder.space, model: encoder.identity };
}

function imageShape(inputShape: number[]): [number, number, number] | null {
  if (inputShape.length === 3) return inputShape as [number, number, number];
  // an MLP on flattened 28x28 grey images takes [784]
  if (inputShape.length === 1 && inputShape[0] === 784) return [28, 28, 1];
  return null;
}

/**
 * Decodes one image (a file, or its bytes) to `[h, w, c]` floats in [0, 1], resized (stretched)
 * exactly as the dataset readers do (`data/imageDecode.ts`), so a query image is embedded like a
 * catalogue image; `name` names it in errors (default: the file).
 */
export async function decodeQueryImage(
  input: string | Uint8Array,
  [h, w, c]: [number, number, number],
  name = typeof input === 'string' ? input : 'the image',
  decode: Pick<ImageDecodeOptions, 'background' | 'fit' | 'resampler'> = {},
): Promise<Float32Array> {
  try {
    const options = resolveDecodeOptions('decodeQueryImage', {
      ...decode,
      size: [h, w],
      channels: c as 1 | 3,
    });
    return Float32Array.from(await decodeImage(input, options), (v) => v / 255);
  } catch (error) {
    if (error instanceof ContrastiveError) throw error;
    throw new ContrastiveError(
      `decodeQueryImage: cannot decode ${name} as an image: ${typeof input === 'string' ? await decodeFailure(input, error) : (error as Error).message}.`,
    );
  }
}

async function thumbnail(pixels: Float32Array, [h, w, c]: [number, number, number]): Promise<string> {
  const { default: sharp } = await import('sharp');
  const raw = Buffer.from(Array.from(pixels, (v) => Math.round(255 * Math.min(1, Math.max(0, v)))));
  const png = await sharp(raw, { raw: { width: w, height: h, channels: c as 1 | 3 } })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}
