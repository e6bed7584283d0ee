/** Real data for the search tests and bench: Fashion-MNIST pixels through a seeded random projection. */
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { loadFashionMnist } from '../../src/data/fashionMnist.js';
import type { LabelTree } from '../../src/hierarchy/labelTree.js';
import { Rng } from '../../src/random.js';

/** Items of the projected set: `vectors` `[N, dim]` (not normalised), a label path and leaf per row. */
export interface ProjectedFashionMnist {
  vectors: Float32Array;
  dim: number;
  count: number;
  leaves: Int32Array;
  paths: string[][];
  tree: LabelTree;
  /** Which files were read (Debian's full set, or the embedded subset). */
  source: string;
  /** Rows `[0, trainCount)` come from the training split, the rest from the test split. */
  trainCount: number;
}

/**
 * Every Fashion-MNIST image (train then test: 70,000 with Debian's dataset-fashion-mnist, 7,000
 * with the embedded subset), pixels centred and multiplied by a seeded Gaussian `[784, dim]`
 * matrix: a cheap embedding that keeps the data's real neighbourhood structure (Johnson-Lindenstrauss).
 */
export async function projectedFashionMnist(
  dim = 64,
  seed = 7,
  limit?: number,
): Promise<ProjectedFashionMnist> {
  const [train, test] = await Promise.all([
    loadFashionMnist({ split: 'train', limit }),
    loadFashionMnist({ split: 'test', limit: limit ? Math.ceil(limit / 6) : undefined }),
  ]);
  const count = train.shape[0] + test.shape[0];
  const pixels = new Float32Array(count * 784);
  pixels.set(train.images);
  pixels.set(test.images, train.images.length);
  const rng = new Rng(seed);
  const projection = Float32Array.from({ length: 784 * dim }, () => rng.normal() / Math.sqrt(dim));
  const vectors = tf.tidy(() => {
    const x = tf.tensor2d(pixels, [count, 784]);
    return tf
      .matMul(tf.sub(x, tf.mean(x, 0, true)), tf.tensor2d(projection, [784, dim]))
      .dataSync() as Float32Array;
  });
  const leaves = new Int32Array(count);
  leaves.set(train.classIds);
  leaves.set(test.classIds, train.shape[0]);
  const tree = train.tree;
  const paths = Array.from(leaves, (leaf) => tree.path(tree.depth - 1, leaf));
  return {
    vectors: Float32Array.from(vectors),
    dim,
    count,
    leaves,
    paths,
    tree,
    source: `${train.source.kind} (${train.source.dir})`,
    trainCount: train.shape[0],
  };
}

/**
 * The float64 oracle: indices of the k rows of `database` most cosine-similar to `query` among
 * those `keep(row)` accepts, best first, with their similarities.
 */
export function bruteForceTopK(
  database: Float32Array,
  dim: number,
  query: ArrayLike<number>,
  k: number,
  keep: (row: number) => boolean = () => true,
): { rows: number[]; scores: number[] } {
  const n = database.length / dim;
  let qn = 0;
  for (let j = 0; j < dim; j++) qn += query[j] * query[j];
  qn = Math.sqrt(qn);
  // keep the k best in a small sorted list (k is tiny): the oracle stays an obvious loop
  const top: { row: number; score: number }[] = [];
  for (let i = 0; i < n; i++) {
    if (!keep(i)) continue;
    let dot = 0;
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      const v = database[i * dim + j];
      dot += v * query[j];
      norm += v * v;
    }
    const score = dot / (Math.sqrt(norm) * qn);
    if (top.length === k && score <= top[k - 1].score) continue;
    let at = top.length;
    while (at > 0 && top[at - 1].score < score) at--;
    top.splice(at, 0, { row: i, score });
    if (top.length > k) top.pop();
  }
  return { rows: top.map((s) => s.row), scores: top.map((s) => s.score) };
}

/** A copy of a 28x28 image shifted by (dx, dy) pixels, with Gaussian noise, through JPEG at quality 85. */
export async function plantedCopy(
  pixels: Float32Array,
  dx: number,
  dy: number,
  rng: Rng,
): Promise<Float32Array> {
  const raw = Buffer.alloc(784);
  for (let y = 0; y < 28; y++)
    for (let x = 0; x < 28; x++) {
      const sx = x - dx;
      const sy = y - dy;
      const v = sx >= 0 && sx < 28 && sy >= 0 && sy < 28 ? pixels[sy * 28 + sx] : 0;
      raw[y * 28 + x] = Math.round(255 * Math.min(1, Math.max(0, v + 0.02 * rng.normal())));
    }
  const jpeg = await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
    .jpeg({ quality: 85 })
    .toBuffer();
  const decoded = await sharp(jpeg).grayscale().raw().toBuffer();
  return Float32Array.from(decoded, (v) => v / 255);
}
