/**
 * Builds the embedded Fashion-MNIST subset (data/fashion-mnist-subset/): the first 600 training
 * and the first 100 test images of each class, in file order, as gzipped IDX files.
 *
 *   node dist/src/data/tools/makeFashionMnistSubset.js [sourceDir] [outDir]
 */
import { join } from 'node:path';
import { readIdx, writeIdx } from '../idx.js';

async function subset(sourceDir: string, outDir: string, images: string, labels: string, perClass: number) {
  const x = await readIdx(join(sourceDir, `${images}.gz`));
  const y = await readIdx(join(sourceDir, `${labels}.gz`));
  const counts = new Array(10).fill(0);
  const keep: number[] = [];
  y.data.forEach((c, i) => {
    if (counts[c] < perClass) {
      counts[c]++;
      keep.push(i);
    }
  });
  const pixels = new Uint8Array(keep.length * 784);
  keep.forEach((i, r) => {
    pixels.set(x.data.subarray(i * 784, (i + 1) * 784), r * 784);
  });
  await writeIdx(join(outDir, `${images}.gz`), { shape: [keep.length, 28, 28], data: pixels });
  await writeIdx(join(outDir, `${labels}.gz`), {
    shape: [keep.length],
    data: Uint8Array.from(keep, (i) => y.data[i]),
  });
  console.log(`${images}: kept ${keep.length} of ${y.shape[0]}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const source = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
  const out = process.argv[3] ?? 'data/fashion-mnist-subset';
  await subset(source, out, 'train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 600);
  await subset(source, out, 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte', 100);
}
