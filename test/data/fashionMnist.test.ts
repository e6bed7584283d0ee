import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  DEBIAN_FASHION_MNIST_DIR,
  EMBEDDED_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  loadFashionMnist,
} from '../../src/data/fashionMnist.js';
import { parseIdx, writeIdx } from '../../src/data/idx.js';
import { ContrastiveError } from '../../src/errors.js';

const fails = (promise: Promise<unknown>, pattern: RegExp) =>
  assert.rejects(promise, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));

describe('Fashion-MNIST', () => {
  it('the embedded subset loads: 600 train / 100 test images per class, pixels in [0, 1], 3-level rows', async () => {
    for (const [split, perClass] of [
      ['train', 600],
      ['test', 100],
    ] as const) {
      const data = await loadFashionMnist({ split, dataDir: EMBEDDED_FASHION_MNIST_DIR });
      assert.equal(data.source.kind, 'explicit');
      assert.deepEqual(data.shape, [perClass * 10, 28, 28, 1]);
      const counts = new Array(10).fill(0);
      for (const c of data.classIds) counts[c]++;
      assert.deepEqual(counts, new Array(10).fill(perClass));
      assert.ok(data.images.every((p) => p >= 0 && p <= 1));
      assert.ok(data.images.some((p) => p > 0.5));
      // the tree of SPEC.md: Bag and the shoes are Goods; T-shirt, Pullover and Shirt share Tops
      const row = (c: number) =>
        Array.from(data.labels.subarray(data.classIds.indexOf(c) * 3, data.classIds.indexOf(c) * 3 + 3));
      assert.deepEqual(data.tree.path(2, 8), ['Goods', 'Accessories', 'Bag']);
      assert.equal(row(0)[1], row(2)[1]);
      assert.equal(row(0)[1], row(6)[1]);
      assert.deepEqual(
        [5, 7, 9].map((c) => row(c)[1]),
        [row(5)[1], row(5)[1], row(5)[1]],
      );
      assert.notEqual(row(8)[0], row(1)[0]);
      assert.equal(data.tree.classes(2)[9], FASHION_MNIST_CLASSES[9]);
    }
  });

  it('the full Debian set has 60,000 + 10,000 images', {
    skip: existsSync(DEBIAN_FASHION_MNIST_DIR) ? false : 'dataset-fashion-mnist is not installed',
  }, async () => {
    const train = await loadFashionMnist({ split: 'train', dataDir: DEBIAN_FASHION_MNIST_DIR, limit: 100 });
    assert.equal(train.shape[0], 100);
    const test = await loadFashionMnist({ split: 'test', dataDir: DEBIAN_FASHION_MNIST_DIR });
    assert.equal(test.shape[0], 10000);
  });

  it('bad files get errors naming the file and what was expected', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contrastive-idx-'));
    try {
      await fails(
        loadFashionMnist({ split: 'test', dataDir: dir }),
        /--data-dir .* must hold t10k-images-idx3-ubyte\[\.gz\] and t10k-labels-idx1-ubyte\[\.gz\]/,
      );
      await writeIdx(join(dir, 't10k-images-idx3-ubyte.gz'), {
        shape: [3, 28, 28],
        data: new Uint8Array(3 * 784),
      });
      await writeIdx(join(dir, 't10k-labels-idx1-ubyte'), { shape: [2], data: new Uint8Array(2) });
      await fails(
        loadFashionMnist({ split: 'test', dataDir: dir }),
        /holds 3 images but .*t10k-labels-idx1-ubyte holds 2 labels; they must match/,
      );
      assert.throws(
        () => parseIdx(Uint8Array.from([1, 2, 8, 1]), 'x.idx'),
        /x\.idx is not an IDX file: the magic number must start with two zero bytes, but got 0x01020801/,
      );
      assert.throws(
        () => parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]), 'y.idx'),
        /y\.idx is truncated: its header promises shape \[9\] = 9 bytes of data, but only 2 follow/,
      );
      assert.throws(
        () => parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0])),
        /data type 0xd; only unsigned bytes/,
      );
      assert.throws(
        () => parseIdx(gzipSync(new Uint8Array(4)).subarray(0, 12), 'z.gz'),
        /z\.gz is a damaged gzip file/,
      );
      await writeFile(join(dir, 'bad'), 'nope');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
