import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  DEBIAN_FASHION_MNIST_DIR,
  EMBEDDED_FASHION_MNIST_DIR,
  FASHION_MNIST_CLASSES,
  loadFashionMnist,
  locateFashionMnist,
} from '../../src/data/fashionMnist.js';
import { encodeIdx, type IdxDtype, parseIdx, readIdx, writeIdx } from '../../src/data/idx.js';
import { makeFashionMnistSubset } from '../../src/data/tools/makeFashionMnistSubset.js';
import { ContrastiveError } from '../../src/errors.js';

const fails = (promise: Promise<unknown>, pattern: RegExp) =>
  assert.rejects(promise, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));
const throws = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));

const HAS_DEBIAN = existsSync(join(DEBIAN_FASHION_MNIST_DIR, 'train-labels-idx1-ubyte.gz'));
const NO_DEBIAN = HAS_DEBIAN ? false : 'dataset-fashion-mnist is not installed';

/** Runs `body` with `$CONTRASTIVE_FASHION_MNIST_DIR` set to `value` (or unset), then restores it. */
async function withEnv<T>(value: string | undefined, body: () => Promise<T>): Promise<T> {
  const saved = process.env.CONTRASTIVE_FASHION_MNIST_DIR;
  if (value === undefined) delete process.env.CONTRASTIVE_FASHION_MNIST_DIR;
  else process.env.CONTRASTIVE_FASHION_MNIST_DIR = value;
  try {
    return await body();
  } finally {
    if (saved === undefined) delete process.env.CONTRASTIVE_FASHION_MNIST_DIR;
    else process.env.CONTRASTIVE_FASHION_MNIST_DIR = saved;
  }
}

describe('IDX files', () => {
  it('round-trip every IDX element type, gzipped or not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contrastive-idx-'));
    try {
      const cases: [IdxDtype, ArrayLike<number>][] = [
        ['uint8', Uint8Array.from([0, 7, 255, 1, 2, 3])],
        ['int8', Int8Array.from([-128, -1, 0, 1, 2, 127])],
        ['int16', Int16Array.from([-32768, -2, 0, 300, 2, 32767])],
        ['int32', Int32Array.from([-(2 ** 31), -1, 0, 70000, 5, 2 ** 31 - 1])],
        ['float32', Float32Array.from([-1.5, 0, 0.25, 3e10, Math.fround(0.1), -0])],
        ['float64', Float64Array.from([-1.5, 0, 0.1, 1e300, Math.PI, 2 ** -1074])],
      ];
      for (const [dtype, values] of cases) {
        for (const name of [`${dtype}.idx`, `${dtype}.idx.gz`]) {
          await writeIdx(join(dir, name), { shape: [2, 3], data: values as never, dtype });
          const back = await readIdx(join(dir, name));
          assert.equal(back.dtype, dtype);
          assert.deepEqual(back.shape, [2, 3]);
          assert.deepEqual(Array.from(back.data), Array.from(values), name);
        }
      }
      // big-endian on disk, as the format says
      assert.deepEqual(
        Array.from(encodeIdx({ shape: [1], data: Int16Array.from([258]), dtype: 'int16' })),
        [0, 0, 0x0b, 1, 0, 0, 0, 1, 1, 2],
      );
      throws(
        () => encodeIdx({ shape: [2, 2], data: new Uint8Array(3) }),
        /writeIdx: data must hold 4 values for shape \[2,2\] \(rank 1-255\), but got 3\./,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('name the file and the problem: magic number, dtype, truncation, damaged gzip, missing file', async () => {
    throws(
      () => parseIdx(Uint8Array.from([1, 2, 8, 1]), 'x.idx'),
      /^readIdx: x\.idx is not an IDX file: the magic number must start with two zero bytes, but got 0x01020801\.$/,
    );
    throws(
      () => parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]), 'y.idx'),
      /^readIdx: y\.idx is truncated: its header promises shape \[9\] = 9 bytes of data, but only 2 follow\.$/,
    );
    throws(
      () => parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 2, 0, 0, 0, 0]), 'f.idx'),
      /f\.idx is truncated: its header promises shape \[2\] = 8 bytes of data, but only 4 follow/,
    );
    throws(
      () => parseIdx(Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1]), 'h.idx'),
      /h\.idx is truncated inside its header \(rank 3 needs 16 bytes, but the file has 8\)/,
    );
    throws(
      () => parseIdx(Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 1, 0]), 'd.idx'),
      /d\.idx holds data type 0xa; expected one of 0x08 \(uint8\)/,
    );
    throws(
      () => parseIdx(gzipSync(new Uint8Array(40)).subarray(0, 12), 'z.gz'),
      /z\.gz is a damaged gzip file/,
    );
    await fails(readIdx('/nonexistent/file.idx'), /readIdx: cannot read \/nonexistent\/file\.idx: ENOENT\./);
    const dir = await mkdtemp(join(tmpdir(), 'contrastive-idx-'));
    try {
      await writeFile(join(dir, 'cut.gz'), gzipSync(new Uint8Array(4000)).subarray(0, 15));
      await fails(readIdx(join(dir, 'cut.gz')), /readIdx: .*cut\.gz is a damaged gzip file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Fashion-MNIST', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'contrastive-fmnist-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the embedded subset loads: 600 train / 100 test images per class, pixels in [0, 1], 3-level rows', async () => {
    for (const [split, perClass] of [
      ['train', 600],
      ['test', 100],
    ] as const) {
      const data = await loadFashionMnist({ split, dataDir: EMBEDDED_FASHION_MNIST_DIR });
      assert.equal(data.source.kind, 'explicit');
      assert.deepEqual(data.shape, [perClass * 10, 28, 28, 1]);
      assert.equal(data.images.length, perClass * 10 * 784);
      const counts = new Array(10).fill(0);
      for (const c of data.classIds) counts[c]++;
      assert.deepEqual(counts, new Array(10).fill(perClass));
      assert.ok(data.images.every((p) => p >= 0 && p <= 1));
      assert.ok(data.images.some((p) => p > 0.5));
      assert.equal(data.labels.length, perClass * 10 * 3);
      for (let i = 0; i < data.classIds.length; i++)
        assert.deepEqual(Array.from(data.labels.subarray(i * 3, i * 3 + 3)), data.tree.row(data.classIds[i]));
    }
  });

  it('the tree is the one of SPEC.md, with leaf id = IDX class id', async () => {
    const { tree } = await loadFashionMnist({ split: 'test', dataDir: EMBEDDED_FASHION_MNIST_DIR, limit: 1 });
    assert.deepEqual(tree.levelNames, ['group', 'family', 'class']);
    assert.deepEqual(tree.classes(2), [...FASHION_MNIST_CLASSES]);
    assert.deepEqual(tree.toNested(), {
      Clothes: {
        Tops: ['T-shirt/top', 'Pullover', 'Shirt'],
        Bottoms: ['Trouser'],
        Dresses: ['Dress'],
        Outers: ['Coat'],
      },
      Goods: { Shoes: ['Sandal', 'Sneaker', 'Ankle boot'], Accessories: ['Bag'] },
    });
    assert.deepEqual(tree.path(2, 8), ['Goods', 'Accessories', 'Bag']);
    assert.deepEqual(tree.path(2, 9), ['Goods', 'Shoes', 'Ankle boot']);
    assert.deepEqual(tree.path(2, 4), ['Clothes', 'Outers', 'Coat']);
  });

  it('looks in dataDir, then $CONTRASTIVE_FASHION_MNIST_DIR, then Debian, then the embedded subset', async () => {
    await withEnv(EMBEDDED_FASHION_MNIST_DIR, async () => {
      const data = await loadFashionMnist({ split: 'test', limit: 3 });
      assert.deepEqual(data.source, { dir: EMBEDDED_FASHION_MNIST_DIR, kind: 'environment' });
      assert.equal(locateFashionMnist('test', EMBEDDED_FASHION_MNIST_DIR).kind, 'explicit');
    });
    await withEnv(dir, () =>
      fails(
        loadFashionMnist({ split: 'train' }),
        /\$CONTRASTIVE_FASHION_MNIST_DIR \(.*\) must hold train-images-idx3-ubyte\[\.gz\] and train-labels-idx1-ubyte\[\.gz\], but does not; fix or unset it\./,
      ),
    );
    await withEnv(undefined, async () => {
      assert.equal(locateFashionMnist('test').kind, HAS_DEBIAN ? 'debian' : 'embedded');
    });
  });

  it('the full Debian set has 60,000 + 10,000 images', { skip: NO_DEBIAN }, async () => {
    const trainImages = await readIdx(join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
    assert.deepEqual(trainImages.shape, [60000, 28, 28]);
    const train = await loadFashionMnist({ split: 'train', dataDir: DEBIAN_FASHION_MNIST_DIR, limit: 100 });
    assert.equal(train.shape[0], 100);
    const test = await loadFashionMnist({ split: 'test', dataDir: DEBIAN_FASHION_MNIST_DIR });
    assert.equal(test.shape[0], 10000);
    const counts = new Array(10).fill(0);
    for (const c of test.classIds) counts[c]++;
    assert.deepEqual(counts, new Array(10).fill(1000));
  });

  it('the embedded subset is exactly the first 600 / 100 images per class of the Debian files', {
    skip: NO_DEBIAN,
  }, async () => {
    const out = join(dir, 'remade');
    await makeFashionMnistSubset({ sourceDir: DEBIAN_FASHION_MNIST_DIR, outDir: out });
    for (const name of [
      'train-images-idx3-ubyte.gz',
      'train-labels-idx1-ubyte.gz',
      't10k-images-idx3-ubyte.gz',
      't10k-labels-idx1-ubyte.gz',
    ]) {
      const [a, b] = await Promise.all([
        readIdx(join(out, name)),
        readIdx(join(EMBEDDED_FASHION_MNIST_DIR, name)),
      ]);
      assert.deepEqual(a.shape, b.shape, name);
      assert.ok(
        Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
          Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength),
        ),
        name,
      );
    }
  });

  it('the subset tool keeps the first k per class in file order', async () => {
    const out = join(dir, 'small');
    const kept = await makeFashionMnistSubset({
      sourceDir: EMBEDDED_FASHION_MNIST_DIR,
      outDir: out,
      trainPerClass: 3,
      testPerClass: 2,
    });
    const full = await loadFashionMnist({ split: 'train', dataDir: EMBEDDED_FASHION_MNIST_DIR });
    const small = await loadFashionMnist({ split: 'train', dataDir: out });
    assert.equal(small.shape[0], 30);
    assert.deepEqual(
      kept.train,
      [...kept.train].sort((a, b) => a - b),
    );
    kept.train.forEach((i, r) => {
      assert.equal(small.classIds[r], full.classIds[i]);
      assert.deepEqual(
        small.images.subarray(r * 784, (r + 1) * 784),
        full.images.subarray(i * 784, (i + 1) * 784),
      );
    });
    for (let c = 0; c < 10; c++) {
      const firstThree = Array.from(full.classIds.keys())
        .filter((i) => full.classIds[i] === c)
        .slice(0, 3);
      assert.deepEqual(
        kept.train.filter((i) => full.classIds[i] === c),
        firstThree,
      );
    }
    assert.equal((await loadFashionMnist({ split: 'test', dataDir: out })).shape[0], 20);
    await fails(
      makeFashionMnistSubset({ sourceDir: out, outDir: join(dir, 'x'), trainPerClass: 4 }),
      /trainPerClass must be at most the smallest class's count, but got 4 \(class counts 3, 3,/,
    );
  });

  it('bad files and options get errors naming the file and what was expected', async () => {
    const bad = join(dir, 'bad');
    await fails(
      loadFashionMnist({ split: 'test', dataDir: bad }),
      /dataDir \(--data-dir\) .*bad must hold t10k-images-idx3-ubyte\[\.gz\] and t10k-labels-idx1-ubyte\[\.gz\], but does not\./,
    );
    await writeIdx(join(bad, 't10k-images-idx3-ubyte.gz'), {
      shape: [3, 28, 28],
      data: new Uint8Array(3 * 784),
    });
    await writeIdx(join(bad, 't10k-labels-idx1-ubyte'), { shape: [2], data: new Uint8Array(2) });
    await fails(
      loadFashionMnist({ split: 'test', dataDir: bad }),
      /t10k-images-idx3-ubyte\.gz holds 3 images but .*t10k-labels-idx1-ubyte holds 2 uint8 labels; they must match\./,
    );
    await writeIdx(join(bad, 't10k-labels-idx1-ubyte'), { shape: [3], data: Uint8Array.from([0, 12, 1]) });
    await fails(
      loadFashionMnist({ split: 'test', dataDir: bad }),
      /t10k-labels-idx1-ubyte record 1 must be a class id 0-9, but got 12\./,
    );
    await writeIdx(join(bad, 't10k-images-idx3-ubyte.gz'), {
      shape: [3, 32, 32],
      data: new Uint8Array(3 * 1024),
    });
    await fails(
      loadFashionMnist({ split: 'test', dataDir: bad }),
      /t10k-images-idx3-ubyte\.gz must hold uint8 \[N, 28, 28\] images, but has uint8 shape \[3,32,32\]\./,
    );
    await writeFile(join(bad, 't10k-images-idx3-ubyte.gz'), 'not idx');
    await fails(loadFashionMnist({ split: 'test', dataDir: bad }), /is not an IDX file/);
    await fails(
      loadFashionMnist({ split: 'valid' as never }),
      /loadFashionMnist: split must be 'train' or 'test', but got "valid"\./,
    );
    await fails(
      loadFashionMnist({ split: 'test', limit: 0 }),
      /loadFashionMnist: limit must be a positive integer, but got 0\./,
    );
  });
});
