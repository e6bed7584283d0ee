import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { ImageCache } from '../../src/data/imageCache.js';
import { readImageFolder } from '../../src/data/imageFolder.js';
import { ContrastiveError } from '../../src/errors.js';
import { crc32 } from '../../src/io/checksum.js';

describe('image cache', () => {
  let root: string;
  let files: string[];
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'contrastive-cache-'));
    for (const [c, dir] of ['A/x', 'A/y', 'B/z'].entries()) {
      await mkdir(join(root, 'set', dir), { recursive: true });
      for (let i = 0; i < 6; i++) {
        const w = 9 + i;
        const h = 7 + c;
        const pixels = Buffer.from(Array.from({ length: w * h * 3 }, (_, k) => (k * (i + 3) + c * 50) % 256));
        await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
          .png()
          .toFile(join(root, 'set', dir, `${i}.png`));
      }
    }
    files = (await readImageFolder(join(root, 'set'), { size: [4, 4] })).files;
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('holds exactly the pixels the folder reader decodes, and is reused while nothing changes', async () => {
    const cacheDir = join(root, 'cache');
    const folder = await readImageFolder(join(root, 'set'), { size: [5, 6], channels: 3 });
    const progress: number[] = [];
    const cache = await ImageCache.open(files, {
      cacheDir,
      size: [5, 6],
      channels: 3,
      onProgress: (done) => progress.push(done),
    });
    assert.equal(cache.reused, false);
    assert.equal(cache.count, 18);
    assert.equal(cache.imageSize, 90);
    assert.equal(progress[progress.length - 1], 18);
    const all = new Float32Array(18 * 90);
    await cache.readRows(
      Array.from({ length: 18 }, (_, i) => i),
      all,
    );
    assert.deepEqual(all, folder.images);
    await cache.close();
    const again = await ImageCache.open(files, { cacheDir, size: [5, 6], channels: 3 });
    assert.equal(again.reused, true);
    assert.equal(again.path, cache.path);
    await again.close();
    // other options: another cache; a touched source: rebuilt
    const grey = await ImageCache.open(files, { cacheDir, size: [5, 6], channels: 1 });
    assert.equal(grey.reused, false);
    assert.notEqual(grey.path, cache.path);
    await grey.close();
    await utimes(files[4], new Date(), new Date(Date.now() + 5000));
    const touched = await ImageCache.open(files, { cacheDir, size: [5, 6], channels: 3, name: 'fixed' });
    assert.equal(touched.reused, false);
    await touched.close();
    const same = await ImageCache.open(files, { cacheDir, size: [5, 6], channels: 3, name: 'fixed' });
    assert.equal(same.reused, true);
    await same.close();
    await utimes(files[4], new Date(), new Date(Date.now() + 10000));
    const rebuilt = await ImageCache.open(files, { cacheDir, size: [5, 6], channels: 3, name: 'fixed' });
    assert.equal(rebuilt.reused, false, 'same name, new mtime: rebuilt');
    await rebuilt.close();
    assert.deepEqual(
      (await readdir(cacheDir)).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    );
  });

  it('reads batches by row index with a prefetch of the next one', async () => {
    const cache = await ImageCache.open(files, { cacheDir: join(root, 'cache'), size: [5, 6], channels: 3 });
    const all = new Float32Array(18 * 90);
    await cache.readRows(
      Array.from({ length: 18 }, (_, i) => i),
      all,
    );
    const batches = [[3, 1], [0], [17, 5, 9]];
    const reader = cache.batchReader(batches);
    for (const [k, rows] of batches.entries()) {
      const batch = await reader.next();
      assert.ok(batch);
      assert.equal(batch.batch, k);
      assert.ok(batch.waitedMs >= 0);
      assert.equal(batch.inputs.length, rows.length * 90);
      rows.forEach((row, r) => {
        assert.deepEqual(batch.inputs.subarray(r * 90, (r + 1) * 90), all.subarray(row * 90, (row + 1) * 90));
      });
    }
    assert.equal(await reader.next(), null);
    await assert.rejects(
      cache.readRows([18], new Float32Array(90)),
      (e: unknown) =>
        e instanceof ContrastiveError &&
        /indices\[0\] must be an image index in \[0, 17\], but got 18/.test(e.message),
    );
    await cache.close();
  });

  it('names a missing or undecodable image, and leaves no partial cache', async () => {
    const cacheDir = join(root, 'bad-cache');
    await assert.rejects(
      ImageCache.open([...files, join(root, 'nope.png')], { cacheDir }),
      (e: unknown) =>
        e instanceof ContrastiveError && /image .*nope\.png \(number 18\) does not exist/.test(e.message),
    );
    const broken = join(root, 'broken.png');
    await writeFile(broken, 'not a png');
    await assert.rejects(
      ImageCache.open([...files, broken], { cacheDir }),
      (e: unknown) =>
        e instanceof ContrastiveError && /ImageCache.open: cannot decode .*broken\.png/.test(e.message),
    );
    assert.deepEqual(await readdir(cacheDir), []);
  });

  it('an aborted signal stops a cache being built, leaving nothing behind', async () => {
    const cacheDir = join(root, 'stopped-cache');
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(
      ImageCache.open(files, { cacheDir, size: [5, 6], channels: 3, signal: controller.signal }),
      (e: unknown) => e instanceof ContrastiveError && /stopped while decoding the images/.test(e.message),
    );
    assert.deepEqual(await readdir(cacheDir), []);
  });

  it('crc32 is the standard CRC-32 (check value, and a bitwise reference on any range)', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
    const bitwise = (b: Uint8Array) => {
      let c = 0xffffffff;
      for (const x of b) {
        c ^= x;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      }
      return (c ^ 0xffffffff) >>> 0;
    };
    for (let n = 0; n < 40; n++) {
      const b = Uint8Array.from({ length: n * 7 + 3 }, (_, i) => (i * 97 + n) & 255);
      assert.equal(crc32(b), bitwise(b));
      assert.equal(crc32(b, 2, b.length - 1), bitwise(b.subarray(2, b.length - 1)));
    }
  });

  it('checks every image against its CRC-32: damage found at open rebuilds, damage found on a read is an error', async () => {
    const cacheDir = join(root, 'crc-cache');
    const first = await ImageCache.open(files, { cacheDir, size: [5, 6], channels: 3 });
    const good = await readFile(first.path);
    await first.close();
    // flip one byte of image 7 on disk: the next open finds it and rebuilds the same bytes
    const flip = async (at: number) => {
      const handle = await open(first.path, 'r+');
      const byte = new Uint8Array(1);
      await handle.read(byte, 0, 1, at);
      byte[0] ^= 0x5a;
      await handle.write(byte, 0, 1, at);
      await handle.close();
    };
    await flip(7 * 90 + 11);
    const rebuilt = await ImageCache.open(files, { cacheDir, size: [5, 6], channels: 3 });
    assert.equal(rebuilt.reused, false);
    assert.equal(rebuilt.damaged, 'image 7 does not match its checksum');
    assert.deepEqual(await readFile(rebuilt.path), good);
    // damage after opening: the read that meets it fails, naming the file and the image
    await flip(12 * 90);
    await rebuilt.readRows([1, 2], new Float32Array(180));
    await assert.rejects(
      rebuilt.readRows([3, 12], new Float32Array(180)),
      (e: unknown) =>
        e instanceof ContrastiveError &&
        e.message.includes(`image cache ${rebuilt.path} is damaged: image 12 does not match`) &&
        !e.message.includes('\n'),
    );
    await rebuilt.close();
    // a header without checksums (an @1 cache) is never trusted
    const header = JSON.parse(await readFile(rebuilt.path.replace(/\.u8$/, '.json'), 'utf8'));
    delete header.crc32;
    header.format = 'tfjs-contrastive/image-cache@1';
    await writeFile(rebuilt.path.replace(/\.u8$/, '.json'), JSON.stringify(header));
    const again = await ImageCache.open(files, { cacheDir, size: [5, 6], channels: 3 });
    assert.equal(again.reused, false);
    assert.equal(again.damaged, undefined);
    assert.deepEqual(await readFile(again.path), good);
    await again.close();
  });
});
