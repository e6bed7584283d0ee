/**
 * Builds the embedded Fashion-MNIST subset (data/fashion-mnist-subset/): the first 600 training
 * and the first 100 test images of each class, in file order, as gzipped IDX files.
 *
 *   node dist/src/data/tools/makeFashionMnistSubset.js [sourceDir] [outDir]
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ContrastiveError } from '../../errors.js';
import { DEBIAN_FASHION_MNIST_DIR, fashionMnistFiles } from '../fashionMnist.js';
import { readIdx, writeIdx } from '../idx.js';

/** Options of {@link makeFashionMnistSubset}. */
export interface FashionMnistSubsetOptions {
  /** Folder with the full IDX files. Default Debian's `/usr/share/datasets/fashion-mnist`. */
  sourceDir?: string;
  /** Where to write the subset (created if missing). */
  outDir: string;
  /** Images kept per class from the training file. Default 600. */
  trainPerClass?: number;
  /** Images kept per class from the test file. Default 100. */
  testPerClass?: number;
}

/** What {@link makeFashionMnistSubset} kept: per split, the source record index of every kept image. */
export interface FashionMnistSubsetResult {
  train: number[];
  test: number[];
}

/**
 * Writes a class-balanced slice of Fashion-MNIST: the first k images of each class in file order
 * (so the slice is reproducible from the originals and needs no random seed), as gzipped IDX.
 */
export async function makeFashionMnistSubset(
  options: FashionMnistSubsetOptions,
): Promise<FashionMnistSubsetResult> {
  const sourceDir = options.sourceDir ?? DEBIAN_FASHION_MNIST_DIR;
  const result: FashionMnistSubsetResult = { train: [], test: [] };
  for (const [split, perClass, names] of [
    ['train', options.trainPerClass ?? 600, ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte']],
    ['test', options.testPerClass ?? 100, ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']],
  ] as const) {
    const files = fashionMnistFiles(sourceDir, split);
    if (!files)
      throw new ContrastiveError(
        `makeFashionMnistSubset: sourceDir ${sourceDir} must hold the ${split} IDX files, but does not.`,
      );
    const x = await readIdx(files.images);
    const y = await readIdx(files.labels);
    const counts = new Array(10).fill(0);
    const keep: number[] = [];
    y.data.forEach((c, i) => {
      if (counts[c] < perClass) {
        counts[c]++;
        keep.push(i);
      }
    });
    if (counts.some((c) => c < perClass)) {
      throw new ContrastiveError(
        `makeFashionMnistSubset: ${split}PerClass must be at most the smallest class's count, but got ${perClass} (class counts ${counts.join(', ')}).`,
      );
    }
    const pixels = new Uint8Array(keep.length * 784);
    keep.forEach((i, r) => {
      pixels.set(x.data.subarray(i * 784, (i + 1) * 784), r * 784);
    });
    await writeIdx(join(options.outDir, `${names[0]}.gz`), { shape: [keep.length, 28, 28], data: pixels });
    await writeIdx(join(options.outDir, `${names[1]}.gz`), {
      shape: [keep.length],
      data: Uint8Array.from(keep, (i) => y.data[i]),
    });
    result[split] = keep;
  }
  return result;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outDir = process.argv[3] ?? 'data/fashion-mnist-subset';
  const kept = await makeFashionMnistSubset({ sourceDir: process.argv[2], outDir });
  console.log(`wrote ${kept.train.length} train + ${kept.test.length} test images to ${outDir}`);
}
