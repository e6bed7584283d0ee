import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadTrainingData } from '../../src/data/dataset.js';
import { readImageFolder } from '../../src/data/imageFolder.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { resolveTrainConfig } from '../../src/train/config.js';

/** A real PNG/JPEG of size×size, one grey level. */
async function image(path: string, grey: number, format: 'png' | 'jpeg' = 'png', size = 12): Promise<void> {
  const pixels = Buffer.alloc(size * size * 3, grey);
  await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .toFormat(format)
    .toFile(path);
}

describe('image folders', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'contrastive-images-'));
    for (const [dir, grey] of [
      ['Clothes/Tops/Shirt', 40],
      ['Clothes/Tops/Tee', 90],
      ['Goods/Shoes/Boot', 200],
    ] as const) {
      await mkdir(join(root, 'set', dir), { recursive: true });
      for (let i = 0; i < 5; i++)
        await image(
          join(root, 'set', dir, `${i}.${i % 2 ? 'jpg' : 'png'}`),
          grey + i,
          i % 2 ? 'jpeg' : 'png',
        );
    }
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('the folder tree is the label tree; images are decoded, resized and scaled to [0, 1] in sorted order', async () => {
    const folder = await readImageFolder(join(root, 'set'), { size: [8, 8], channels: 1 });
    assert.deepEqual(folder.shape, [15, 8, 8, 1]);
    assert.deepEqual(folder.paths[0], ['Clothes', 'Tops', 'Shirt']);
    assert.deepEqual(folder.paths[14], ['Goods', 'Shoes', 'Boot']);
    assert.ok(Math.abs(folder.images[0] - 40 / 255) < 0.02);
    assert.ok(Math.abs(folder.images[14 * 64] - 204 / 255) < 0.03);
    const rgb = await readImageFolder(join(root, 'set'), { size: [4, 6], channels: 3 });
    assert.deepEqual(rgb.shape, [15, 4, 6, 3]);
  });

  it('a corrupt image is an error naming it, or skipped and listed on request; uneven depth needs pad', async () => {
    const bad = join(root, 'bad');
    await mkdir(join(bad, 'A', 'x'), { recursive: true });
    await image(join(bad, 'A', 'x', 'ok.png'), 10);
    await writeFile(join(bad, 'A', 'x', 'broken.png'), 'not an image');
    await assert.rejects(
      readImageFolder(bad),
      (e: unknown) =>
        e instanceof ContrastiveError && /cannot decode .*broken\.png: .*skipUnreadable/.test(e.message),
    );
    const skipped = await readImageFolder(bad, { skipUnreadable: true });
    assert.equal(skipped.shape[0], 1);
    assert.match(skipped.skipped[0].file, /broken\.png$/);
    await mkdir(join(bad, 'B'), { recursive: true });
    await image(join(bad, 'B', 'y.png'), 10);
    await assert.rejects(
      readImageFolder(bad, { skipUnreadable: true }),
      /y\.png is 1 folder\(s\) deep but others are 2; pass pad: 'repeat-leaf'/,
    );
    const padded = await readImageFolder(bad, { skipUnreadable: true, pad: 'repeat-leaf' });
    assert.deepEqual(padded.paths.at(-1), ['B', 'B']);
  });

  it('an image folder is training data: stratified split, conv-ready shape', async () => {
    await useBackend('wasm');
    const config = await resolveTrainConfig({
      out: join(root, 'run'),
      data: join(root, 'set'),
      imageSize: 16,
      testFraction: 0.4,
    });
    const data = await loadTrainingData(config);
    assert.equal(data.kind, 'image');
    assert.deepEqual(data.inputShape, [16, 16, 1]);
    assert.equal(data.test.size, 6);
    assert.deepEqual(data.tree.levelSizes, [2, 2, 3]);
  });
});
