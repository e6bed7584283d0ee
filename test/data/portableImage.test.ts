/**
 * The portable image pipeline of frozen backbones (`data/portableImage.ts`), which Node and the web
 * page share: its PNG decoder gives sharp's pixels for every colour type, depth and filter; the
 * resampler keeps an image at its own size unchanged, composites as its formula says, and fits
 * (`crop`, `pad`) where it should; `decodeImage` with `resampler: 'portable'` is that pipeline.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { decodeImage, decodeRgba, resolveDecodeOptions } from '../../src/data/imageDecode.js';
import { parsePng, pngToRgba, prepareImage } from '../../src/data/portableImage.js';
import { ContrastiveError } from '../../src/errors.js';
import { Rng } from '../../src/random.js';

/** Random 8-bit pixels (noise, so the PNG encoder picks every row filter). */
function noise(width: number, height: number, channels: number, seed: number): Buffer {
  const rng = new Rng(seed);
  return Buffer.from(Array.from({ length: width * height * channels }, () => Math.floor(rng.next() * 256)));
}

async function sharpRgba(png: Buffer): Promise<Uint8Array> {
  const { data } = await sharp(png)
    .toColourspace('srgb')
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

function decode(png: Buffer) {
  const parsed = parsePng(png);
  assert.ok(parsed, 'a non-interlaced PNG');
  return pngToRgba(parsed, new Uint8Array(inflateSync(parsed.compressed)));
}

describe('portable image pipeline', () => {
  it('decodes PNGs of every colour type and depth to the RGBA pixels sharp reads', async () => {
    const [w, h] = [37, 23];
    const cases: [string, Promise<Buffer>][] = [
      [
        'RGBA',
        sharp(noise(w, h, 4, 1), { raw: { width: w, height: h, channels: 4 } })
          .png()
          .toBuffer(),
      ],
      [
        'RGB',
        sharp(noise(w, h, 3, 2), { raw: { width: w, height: h, channels: 3 } })
          .png()
          .toBuffer(),
      ],
      [
        'grey',
        sharp(noise(w, h, 1, 3), { raw: { width: w, height: h, channels: 1 } })
          .png()
          .toBuffer(),
      ],
      [
        'grey + alpha',
        sharp(noise(w, h, 2, 4), { raw: { width: w, height: h, channels: 2 } })
          .png()
          .toBuffer(),
      ],
      [
        'palette with transparency',
        sharp(noise(w, h, 4, 5), { raw: { width: w, height: h, channels: 4 } })
          .png({ palette: true, colours: 200 })
          .toBuffer(),
      ],
      [
        'palette, 2 bits',
        sharp(noise(w, h, 3, 6), { raw: { width: w, height: h, channels: 3 } })
          .png({ palette: true, colours: 4 })
          .toBuffer(),
      ],
      [
        'RGB, 16 bits (high byte)',
        sharp(noise(w, h, 3, 10), { raw: { width: w, height: h, channels: 3 } })
          .toColourspace('rgb16')
          .png()
          .toBuffer(),
      ],
    ];
    for (const [name, made] of cases) {
      const png = await made;
      const ours = decode(png);
      const parsed = parsePng(png)!;
      if (name.includes('2 bits')) assert.equal(parsed.bitDepth, 2, name);
      if (name.includes('16 bits')) assert.equal(parsed.bitDepth, 16, name);
      assert.equal(ours.width, w, name);
      assert.equal(ours.height, h, name);
      assert.deepEqual(ours.data, await sharpRgba(png), name);
    }
  });

  it('falls back to sharp for an interlaced PNG, and a damaged one is a ContrastiveError', async () => {
    const png = await sharp(noise(9, 7, 4, 7), { raw: { width: 9, height: 7, channels: 4 } })
      .png({ progressive: true })
      .toBuffer();
    assert.equal(parsePng(png), null);
    assert.deepEqual((await decodeRgba(png)).data, await sharpRgba(png));
    const truncated = png.subarray(0, 40);
    assert.throws(() => parsePng(truncated, 'x.png'), ContrastiveError);
  });

  it('keeps an opaque image at its own size unchanged; composites alpha as round((c·a + bg·(255 − a)) / 255)', () => {
    const image = { data: new Uint8Array(noise(11, 5, 4, 8)), width: 11, height: 5 };
    for (let p = 0; p < 55; p++) image.data[p * 4 + 3] = 255;
    const same = prepareImage(image, { size: [5, 11], fit: 'stretch', background: null });
    assert.deepEqual(
      same,
      Uint8Array.from({ length: 55 * 3 }, (_, i) => image.data[Math.floor(i / 3) * 4 + (i % 3)]),
    );
    const pixel = { data: Uint8Array.from([200, 10, 90, 77]), width: 1, height: 1 };
    const bg = [255, 128, 0] as const;
    assert.deepEqual(
      Array.from(prepareImage(pixel, { size: [1, 1], fit: 'stretch', background: bg })),
      [0, 1, 2].map((c) => Math.round((pixel.data[c] * 77 + bg[c] * (255 - 77)) / 255)),
    );
  });

  it('pad centres the fitted image on the background; crop keeps the centre', () => {
    // 40×20: red left and right quarters, green middle half
    const [w, h] = [40, 20];
    const data = new Uint8Array(w * h * 4);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        data.set(x >= 10 && x < 30 ? [0, 200, 0, 255] : [200, 0, 0, 255], (y * w + x) * 4);
    const padded = prepareImage(
      { data, width: w, height: h },
      { size: [16, 16], fit: 'pad', background: [0, 0, 255] },
    );
    const at = (img: Uint8Array, x: number, y: number) =>
      Array.from(img.subarray((y * 16 + x) * 3, (y * 16 + x) * 3 + 3));
    for (const y of [0, 3, 12, 15]) assert.deepEqual(at(padded, 8, y), [0, 0, 255], `padding row ${y}`);
    assert.deepEqual(at(padded, 8, 8), [0, 200, 0]);
    assert.deepEqual(at(padded, 0, 8), [200, 0, 0]);
    const cropped = prepareImage(
      { data, width: w, height: h },
      { size: [16, 16], fit: 'crop', background: null },
    );
    for (const y of [0, 8, 15]) assert.deepEqual(at(cropped, 8, y), [0, 200, 0]);
  });

  it("decodeImage with resampler 'portable' is decodeRgba + prepareImage; it makes RGB only", async () => {
    const png = await sharp(noise(30, 26, 4, 9), { raw: { width: 30, height: 26, channels: 4 } })
      .png()
      .toBuffer();
    const options = resolveDecodeOptions('test', {
      size: [16, 12],
      channels: 3,
      background: [255, 255, 255],
      resampler: 'portable',
    });
    const viaDecode = await decodeImage(png, options);
    const direct = prepareImage(await decodeRgba(png), {
      size: [16, 12],
      fit: 'stretch',
      background: [255, 255, 255],
    });
    assert.deepEqual(viaDecode, direct);
    assert.throws(
      () => resolveDecodeOptions('test', { channels: 1, resampler: 'portable' }),
      /channels must be 3/,
    );
  });
});
