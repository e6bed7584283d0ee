import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadFashionMnist } from '../data/fashionMnist.js';
import { type FeatureTableOptions, readFeatureTable } from '../data/featureTable.js';
import {
  decodeFailure,
  decodeImage,
  type ImageDecodeOptions,
  resolveDecodeOptions,
} from '../data/imageDecode.js';
import { readImageFolder } from '../data/imageFolder.js';
import { ContrastiveError } from '../errors.js';
import type { EmbeddingSpace, IndexItemInput, ModelIdentity } from './embeddingIndex.js';
import { openRunEncoder, type RunEncoder } from './runModel.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff']);

/** What to embed. */
export type InputSource =
  /** A split of Fashion-MNIST (Debian's full set, `dataDir`, or the embedded subset); ids are row numbers. */
  | { kind: 'fashion-mnist'; split: 'train' | 'test'; dataDir?: string; limit?: number }
  /** A folder whose sub-folder tree is the label path of each image (as for training); ids are relative paths. */
  | { kind: 'image-folder'; path: string }
  /** Image files without labels; ids are the paths as given. */
  | { kind: 'images'; files: readonly string[] }
  /** A CSV / JSONL / .npy feature table with a label path per row (see `readFeatureTable`); ids are row numbers. */
  | ({ kind: 'table'; path: string } & FeatureTableOptions);

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

/** Inputs decoded to `[count, ...inputShape]` floats, with their items. */
interface DecodedInputs {
  inputs: Float32Array;
  count: number;
  items: IndexItemInput[];
  /** Shape of one input when it is not the model's (images a frozen backbone resizes itself). */
  shape?: number[];
}

/**
 * Embeds any data with a trained run: a Fashion-MNIST split, an image folder, image files or a
 * feature table, in batches (with progress), labels optional. Images are resized to the model's
 * input size and channels.
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
    const decoded = await decodeInputs(fn, source, encoder, options.thumbnails ?? false);
    const shape = decoded.shape ?? encoder.inputShape;
    const size = shape.reduce((a, b) => a * b, 1);
    let embeddings = new Float32Array(0);
    let dim = 0;
    for (let start = 0; start < decoded.count; start += batchSize) {
      const end = Math.min(decoded.count, start + batchSize);
      const batch = tf.tensor(decoded.inputs.subarray(start * size, end * size), [end - start, ...shape]);
      const out = await encoder.embedAsync(batch).finally(() => batch.dispose());
      if (dim === 0) {
        dim = out.shape[1];
        embeddings = new Float32Array(decoded.count * dim);
      }
      const values = (await out.data()) as Float32Array;
      out.dispose();
      for (let k = 0; k < values.length; k++)
        if (!Number.isFinite(values[k]))
          throw new ContrastiveError(
            `${fn}: the model gave a non-finite embedding for item ${decoded.items[start + Math.floor(k / dim)]?.id ?? start} (its weights or the input are broken); nothing was written.`,
          );
      embeddings.set(values, start * dim);
      options.onProgress?.(end, decoded.count);
    }
    return {
      embeddings,
      dim,
      count: decoded.count,
      items: decoded.items,
      space: encoder.space,
      model: encoder.identity,
    };
  } finally {
    if (typeof run === 'string') encoder.dispose();
  }
}

/**
 * Reads a source given as text, as the CLI takes it: `fashion-mnist` or `fashion-mnist:train`,
 * a folder (an image folder), an image file, or a `.csv` / `.jsonl` / `.npy` table.
 */
export async function parseInputSource(
  text: string,
  defaults: { split?: 'train' | 'test'; dataDir?: string } = {},
): Promise<InputSource> {
  const fmnist = /^fashion-mnist(?::(train|test))?$/.exec(text);
  if (fmnist)
    return {
      kind: 'fashion-mnist',
      split: (fmnist[1] as 'train' | 'test' | undefined) ?? defaults.split ?? 'test',
      dataDir: defaults.dataDir,
    };
  const info = await stat(text).catch(() => null);
  if (!info)
    throw new ContrastiveError(
      `--data ${text}: no such file or folder (or use fashion-mnist, fashion-mnist:train).`,
    );
  if (info.isDirectory()) {
    // a folder with class sub-folders is labelled; a flat folder of images is not
    const entries = await readdir(text, { withFileTypes: true });
    if (entries.some((e) => e.isDirectory() && !e.name.startsWith('.')))
      return { kind: 'image-folder', path: text };
    return { kind: 'images', files: await listImages(text) };
  }
  if (IMAGE_EXTENSIONS.has(extname(text).toLowerCase())) return { kind: 'images', files: [text] };
  const labelsPath = extname(text).toLowerCase() === '.npy' ? `${text}.labels.txt` : undefined;
  return { kind: 'table', path: text, labelsPath };
}

async function decodeInputs(
  fn: string,
  source: InputSource,
  encoder: Pick<RunEncoder, 'inputShape' | 'imageDecode' | 'resizesImages'>,
  thumbnails: boolean,
): Promise<DecodedInputs> {
  const { inputShape, imageDecode } = encoder;
  const size = inputShape.reduce((a, b) => a * b, 1);
  const image = imageShape(inputShape);
  // a frozen pretrained backbone takes colour images of its own size and resizes grey ones itself
  const pretrained = encoder.resizesImages === true;
  switch (source.kind) {
    case 'fashion-mnist': {
      const split = await loadFashionMnist({
        split: source.split,
        dataDir: source.dataDir,
        limit: source.limit,
      });
      if (!pretrained) checkSize(fn, `Fashion-MNIST (784 pixels)`, 784, size, inputShape);
      const items = await Promise.all(
        Array.from({ length: split.shape[0] }, async (_, i) => ({
          id: String(i),
          label: split.tree.path(2, split.classIds[i]),
          source: `fashion-mnist:${source.split}#${i}`,
          thumbnail: thumbnails
            ? await thumbnail(split.images.subarray(i * 784, (i + 1) * 784), [28, 28, 1])
            : undefined,
        })),
      );
      return {
        inputs: split.images,
        count: split.shape[0],
        items,
        shape: pretrained ? [28, 28, 1] : undefined,
      };
    }
    case 'image-folder': {
      if (!image)
        throw new ContrastiveError(
          `${fn}: the run's model takes feature vectors [${inputShape}], not images; pass a feature table.`,
        );
      const folder = await readImageFolder(source.path, {
        size: [image[0], image[1]],
        channels: image[2] === 3 ? 3 : 1,
        ...imageDecode,
        pad: 'repeat-leaf',
      });
      const items = await Promise.all(
        folder.files.map(async (file, i) => ({
          id: relative(source.path, file).split(sep).join('/'),
          label: folder.paths[i],
          source: file,
          thumbnail: thumbnails
            ? await thumbnail(folder.images.subarray(i * size, (i + 1) * size), image)
            : undefined,
        })),
      );
      return { inputs: folder.images, count: folder.shape[0], items };
    }
    case 'images': {
      if (!image)
        throw new ContrastiveError(
          `${fn}: the run's model takes feature vectors [${inputShape}], not images; pass a feature table.`,
        );
      if (source.files.length === 0)
        throw new ContrastiveError(`${fn}: files must list at least one image, but got none.`);
      const inputs = new Float32Array(source.files.length * size);
      const items: IndexItemInput[] = [];
      for (const [i, file] of source.files.entries()) {
        const pixels = await decodeQueryImage(file, image, undefined, imageDecode);
        inputs.set(pixels, i * size);
        items.push({
          id: file,
          source: file,
          thumbnail: thumbnails ? await thumbnail(pixels, image) : undefined,
        });
      }
      return { inputs, count: source.files.length, items };
    }
    case 'table': {
      const { kind: _kind, path, ...options } = source;
      const table = await readFeatureTable(path, options);
      checkSize(fn, `${path} (${table.dim} features per row)`, table.dim, size, inputShape);
      return {
        inputs: table.features,
        count: table.numRows,
        items: table.paths.map((label, i) => ({ id: String(i), label, source: `${path}#${i + 1}` })),
      };
    }
    default:
      throw new ContrastiveError(
        `${fn}: source.kind must be fashion-mnist, image-folder, images or table, but got ${JSON.stringify((source as { kind: unknown }).kind)}.`,
      );
  }
}

function imageShape(inputShape: number[]): [number, number, number] | null {
  if (inputShape.length === 3) return inputShape as [number, number, number];
  // an MLP on flattened 28x28 grey images takes [784]
  if (inputShape.length === 1 && inputShape[0] === 784) return [28, 28, 1];
  return null;
}

function checkSize(fn: string, what: string, got: number, want: number, inputShape: number[]): void {
  if (got !== want)
    throw new ContrastiveError(
      `${fn}: the run's model takes inputs of shape [${inputShape}] (${want} values), but ${what} has ${got}.`,
    );
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

async function listImages(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = entries
    .filter(
      (e) => e.isFile() && !e.name.startsWith('.') && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase()),
    )
    .map((e) => join(dir, e.name))
    .sort();
  if (files.length === 0)
    throw new ContrastiveError(
      `--data ${dir}: no images (${[...IMAGE_EXTENSIONS].join(', ')}) in this folder.`,
    );
  return files;
}
