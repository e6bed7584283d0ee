import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContrastiveError } from '../errors.js';
import { LabelTree } from '../hierarchy/labelTree.js';
import { readIdx } from './idx.js';

/** IDX label ids 0–9 of Fashion-MNIST, in order. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** The 3-level tree of the hierarchical-classification literature (SPEC.md), by IDX class id. */
const FASHION_MNIST_PATHS: readonly (readonly string[])[] = [
  ['Clothes', 'Tops', 'T-shirt/top'],
  ['Clothes', 'Bottoms', 'Trouser'],
  ['Clothes', 'Tops', 'Pullover'],
  ['Clothes', 'Dresses', 'Dress'],
  ['Clothes', 'Outers', 'Coat'],
  ['Goods', 'Shoes', 'Sandal'],
  ['Clothes', 'Tops', 'Shirt'],
  ['Goods', 'Shoes', 'Sneaker'],
  ['Goods', 'Accessories', 'Bag'],
  ['Goods', 'Shoes', 'Ankle boot'],
];

/** The Fashion-MNIST label tree {Clothes, Goods} › 6 families › 10 classes; leaf id = IDX class id. */
export function fashionMnistTree(): LabelTree {
  return LabelTree.fromPaths(FASHION_MNIST_PATHS, { levelNames: ['group', 'family', 'class'] });
}

/** The embedded class-balanced subset shipped with the package (see data/fashion-mnist-subset/README.md). */
export const EMBEDDED_FASHION_MNIST_DIR = fileURLToPath(
  new URL('../../../data/fashion-mnist-subset', import.meta.url),
);

/** Debian's `dataset-fashion-mnist` package. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Options of {@link loadFashionMnist}. */
export interface FashionMnistOptions {
  /** Which file pair: the 60,000-image training set or the 10,000-image test set (6,000 / 1,000 embedded). */
  split: 'train' | 'test';
  /** A folder with the four IDX files; otherwise `$CONTRASTIVE_FASHION_MNIST_DIR`, Debian's, the embedded subset. */
  dataDir?: string;
  /** Keep only the first `limit` images (a positive integer). */
  limit?: number;
}

/** A split of Fashion-MNIST. */
export interface FashionMnistSplit {
  /** `[N, 28, 28, 1]` row-major, scaled to [0, 1]. */
  images: Float32Array;
  shape: [number, 28, 28, 1];
  /** IDX class id (0–9) of each image. */
  classIds: Int32Array;
  /** `[N, 3]` label rows (group, family, class), coarsest first. */
  labels: Int32Array;
  tree: LabelTree;
  /** The folder the files were read from, and which kind of source it is. */
  source: { dir: string; kind: 'explicit' | 'environment' | 'debian' | 'embedded' };
}

const FILES = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
} as const;

/** Where the files of a split are: `dir/name` or `dir/name.gz`, or null. */
function findFile(dir: string, name: string): string | null {
  for (const candidate of [join(dir, `${name}.gz`), join(dir, name)])
    if (existsSync(candidate)) return candidate;
  return null;
}

/**
 * Picks the first source that has both files of the split: `dataDir`, then
 * `$CONTRASTIVE_FASHION_MNIST_DIR`, then Debian's folder, then the embedded subset. A `dataDir` or
 * environment variable that names a folder without the files is an error (not silently skipped).
 */
export function locateFashionMnist(split: 'train' | 'test', dataDir?: string): FashionMnistSplit['source'] {
  const has = (dir: string) => FILES[split].every((f) => findFile(dir, f) !== null);
  const wanted = FILES[split].map((f) => `${f}[.gz]`).join(' and ');
  if (dataDir !== undefined) {
    if (!has(dataDir)) {
      throw new ContrastiveError(
        `loadFashionMnist: dataDir (--data-dir) ${dataDir} must hold ${wanted}, but does not.`,
      );
    }
    return { dir: dataDir, kind: 'explicit' };
  }
  const env = process.env.CONTRASTIVE_FASHION_MNIST_DIR;
  if (env) {
    if (!has(env)) {
      throw new ContrastiveError(
        `loadFashionMnist: $CONTRASTIVE_FASHION_MNIST_DIR (${env}) must hold ${wanted}, but does not; fix or unset it.`,
      );
    }
    return { dir: env, kind: 'environment' };
  }
  if (has(DEBIAN_FASHION_MNIST_DIR)) return { dir: DEBIAN_FASHION_MNIST_DIR, kind: 'debian' };
  if (has(EMBEDDED_FASHION_MNIST_DIR)) return { dir: EMBEDDED_FASHION_MNIST_DIR, kind: 'embedded' };
  throw new ContrastiveError(
    `loadFashionMnist: no Fashion-MNIST ${split} files found (looked in ${DEBIAN_FASHION_MNIST_DIR} and ${EMBEDDED_FASHION_MNIST_DIR}); install dataset-fashion-mnist or pass dataDir (the CLI's --data-dir).`,
  );
}

/** The paths of the image and label files of a split in `dir` (`.gz` preferred), or null. */
export function fashionMnistFiles(
  dir: string,
  split: 'train' | 'test',
): { images: string; labels: string } | null {
  const images = findFile(dir, FILES[split][0]);
  const labels = findFile(dir, FILES[split][1]);
  return images && labels ? { images, labels } : null;
}

/**
 * Loads a split of Fashion-MNIST with its 3-level label tree. Sources, in order: `dataDir`,
 * `$CONTRASTIVE_FASHION_MNIST_DIR`, Debian's `/usr/share/datasets/fashion-mnist`, then the
 * embedded 6,000 + 1,000 image subset that ships with the package (so it works offline anywhere);
 * `source` says which was used. Images come back as float32 `[N, 28, 28, 1]` in [0, 1].
 *
 * @example
 * ```ts
 * const train = await loadFashionMnist({ split: 'train' });
 * console.log(train.source.kind, train.shape); // 'debian' [60000, 28, 28, 1]
 * ```
 */
export async function loadFashionMnist(options: FashionMnistOptions): Promise<FashionMnistSplit> {
  const fn = 'loadFashionMnist';
  if (options.split !== 'train' && options.split !== 'test') {
    throw new ContrastiveError(
      `${fn}: split must be 'train' or 'test', but got ${JSON.stringify(options.split)}.`,
    );
  }
  if (options.limit !== undefined && !(Number.isInteger(options.limit) && options.limit > 0)) {
    throw new ContrastiveError(`${fn}: limit must be a positive integer, but got ${options.limit}.`);
  }
  const source = locateFashionMnist(options.split, options.dataDir);
  const files = fashionMnistFiles(source.dir, options.split)!;
  const [images, labels] = await Promise.all([readIdx(files.images), readIdx(files.labels)]);
  if (
    images.dtype !== 'uint8' ||
    images.shape.length !== 3 ||
    images.shape[1] !== 28 ||
    images.shape[2] !== 28
  ) {
    throw new ContrastiveError(
      `${fn}: ${files.images} must hold uint8 [N, 28, 28] images, but has ${images.dtype} shape [${images.shape.join(',')}].`,
    );
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1 || labels.shape[0] !== images.shape[0]) {
    throw new ContrastiveError(
      `${fn}: ${files.images} holds ${images.shape[0]} images but ${files.labels} holds ${labels.shape.join('x')} ${labels.dtype} labels; they must match.`,
    );
  }
  const n = Math.min(images.shape[0], options.limit ?? Number.POSITIVE_INFINITY);
  const tree = fashionMnistTree();
  const leafRows = tree.leafRows();
  const classIds = Int32Array.from(labels.data.subarray(0, n));
  const rows = new Int32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const c = classIds[i];
    if (c > 9)
      throw new ContrastiveError(`${fn}: ${files.labels} record ${i} must be a class id 0-9, but got ${c}.`);
    rows.set(leafRows.subarray(c * 3, c * 3 + 3), i * 3);
  }
  const pixels = new Float32Array(n * 784);
  const bytes = images.data;
  for (let k = 0; k < pixels.length; k++) pixels[k] = bytes[k] / 255;
  return { images: pixels, shape: [n, 28, 28, 1], classIds, labels: rows, tree, source };
}
