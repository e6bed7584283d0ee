/**
 * The image cache through the real CLI: a disk that fills (ENOSPC) or fails (EIO) while the cache
 * is written is one line naming the file and the bytes it needs, with nothing left behind; a
 * cache damaged on disk is found by its checksums and rebuilt, never silently reused.
 */
import assert from 'node:assert/strict';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { Rng } from '../../src/random.js';
import { cli, hasNoStack } from '../helpers/cli.js';
import { tempRuns } from '../helpers/train.js';

describe('image cache faults through the CLI', () => {
  let dir: string;
  let images: string;
  const run = (out: string, cacheDir: string) => [
    'train',
    '--data',
    images,
    '--stream',
    'on',
    '--cache-dir',
    cacheDir,
    '--channels',
    '3',
    '--image-size',
    '10',
    '--encoder',
    'mlp',
    '--method',
    'supcon',
    '--batch-size',
    '16',
    '--epochs',
    '1',
    '--embedding-dim',
    '16',
    '--projection-dim',
    '8',
    '--backend',
    'wasm',
    '--seed',
    '3',
    '--out',
    out,
  ];

  before(async () => {
    dir = await tempRuns();
    images = join(dir, 'photos');
    const rng = new Rng(5);
    for (const [c, path] of ['Clothes/Shirt', 'Clothes/Dress', 'Goods/Bag', 'Goods/Shoe'].entries()) {
      await mkdir(join(images, path), { recursive: true });
      for (let i = 0; i < 12; i++) {
        const w = 12 + (i % 4);
        const pixels = Buffer.from(
          Array.from({ length: w * 12 * 3 }, (_, k) => (40 * c + k + rng.int(30)) & 255),
        );
        await sharp(pixels, { raw: { width: w, height: 12, channels: 3 } })
          .png()
          .toFile(join(images, path, `${i}.png`));
      }
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const code of ['ENOSPC', 'EIO']) {
    it(`${code} while the cache is written: one line naming the file and the bytes, no temp file left`, async () => {
      const cacheDir = join(dir, `cache-${code}`);
      const r = cli(['train', ...run(join(dir, `out-${code}`), cacheDir).slice(1)], {
        CONTRASTIVE_FAULT: `image-cache-write:5:${code}`,
      });
      assert.equal(r.status, 1, r.stderr);
      assert.ok(hasNoStack(r.stderr), r.stderr);
      const line = r.stderr.trim().split('\n').at(-1) ?? '';
      assert.match(
        line,
        new RegExp(
          `^error: cannot write the image cache .*cache-${code}/images-[0-9a-f]+\\.u8: .*\\(${code}\\); it needs \\d+ bytes`,
        ),
      );
      assert.deepEqual(
        (await readdir(cacheDir)).filter((f) => f.endsWith('.tmp') || f.endsWith('.u8')),
        [],
      );
    });
  }

  it('a cache damaged on disk is found by its checksums and rebuilt, with a warning', async () => {
    const cacheDir = join(dir, 'shared-cache');
    const first = cli(run(join(dir, 'first'), cacheDir));
    assert.equal(first.status, 0, first.stderr);
    const data = (await readdir(cacheDir)).filter((f) => f.endsWith('.u8'));
    assert.equal(data.length, 2, data.join(', '));
    const paths = data.map((f) => join(cacheDir, f));
    const good = await Promise.all(paths.map((p) => readFile(p)));
    // overwrite 300 bytes in the middle of each file (same size: only a checksum can tell)
    for (const path of paths) {
      const handle = await open(path, 'r+');
      await handle.write(new Uint8Array(300).fill(7), 0, 300, 600);
      await handle.close();
    }
    const second = cli(run(join(dir, 'second'), cacheDir));
    assert.equal(second.status, 0, second.stderr);
    assert.ok(hasNoStack(second.stderr), second.stderr);
    assert.match(
      second.stderr,
      /warning: the train image cache .*\.u8 was damaged \(image \d+ does not match its checksum\); it was rebuilt\./,
    );
    assert.match(second.stderr, /warning: the test image cache .*\.u8 was damaged/);
    assert.deepEqual(await Promise.all(paths.map((p) => readFile(p))), good);
    // both runs trained on the same pixels
    assert.deepEqual(
      await readFile(join(dir, 'second', 'model', 'weights.bin')),
      await readFile(join(dir, 'first', 'model', 'weights.bin')),
    );
  });
});
