import { mkdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import sharp from 'sharp';
import { check } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic.js';
import { Rng } from '../../random.js';
import { FASHION_MNIST_CLASSES, fashionMnistTree, loadFashionMnist } from '../fashionMnist.js';

/** Options of {@link renderFashionCatalogue}. */
export interface FashionCatalogueOptions {
  /** Output folder: `<outDir>/<split>/<group>/<family>/<class>/<n>.jpg` and `<outDir>/<split>.csv`. */
  outDir: string;
  /** Items per split, taken from the start of Fashion-MNIST's train and test files. Defaults 2000 and 500. */
  trainItems?: number;
  testItems?: number;
  /** Side of the square colour photos. Default 64. */
  size?: number;
  /** Seed of colours, backgrounds and placement. Default 0. */
  seed?: number;
  /** Fashion-MNIST folder (see `loadFashionMnist`); default Debian's or the embedded subset. */
  dataDir?: string;
  /** JPEG quality. Default 90. */
  quality?: number;
}

/** {@link renderFashionCatalogue}'s result. */
export interface FashionCatalogue {
  /** The folder tree of each split (the folders are the label tree). */
  folders: { train: string; test: string };
  /** The manifest of each split: `image,label,group,family,class` with paths relative to `outDir`. */
  manifests: { train: string; test: string };
  counts: { train: number; test: number };
}

/** Folder-safe class names (`T-shirt/top` holds the path separator). */
export const CATALOGUE_CLASS_NAMES = FASHION_MNIST_CLASSES.map((name) => name.replace(/\//g, '-'));

/**
 * Renders Fashion-MNIST items as colour product photos: each 28×28 item is scaled (to 55–85 % of
 * the side), placed at a random spot, given a random garment colour (shaded by the item's own grey
 * levels, which act as the alpha) on a random background (a two-colour gradient with a little
 * texture), and written as a JPEG into a folder tree `group/family/class` — Clothes/Tops/Shirt —
 * together with a CSV manifest listing the same files. A folder and its manifest load as the same
 * dataset. Deterministic for a seed.
 */
export async function renderFashionCatalogue(options: FashionCatalogueOptions): Promise<FashionCatalogue> {
  const fn = 'renderFashionCatalogue';
  const size = options.size ?? 64;
  check(
    Number.isInteger(size) && size >= 28 && size <= 512,
    () => `${fn}: size must be an integer in [28, 512], but got ${size}.`,
  );
  const tree = fashionMnistTree();
  const rng = new Rng(options.seed ?? 0);
  const counts = { train: 0, test: 0 };
  const quality = options.quality ?? 90;
  for (const split of ['train', 'test'] as const) {
    const limit = split === 'train' ? (options.trainItems ?? 2000) : (options.testItems ?? 500);
    const data = await loadFashionMnist({ split, dataDir: options.dataDir, limit });
    const n = data.shape[0];
    const rows: { segments: string[]; line: string }[] = [];
    const pixels = Buffer.alloc(size * size * 3);
    for (let i = 0; i < n; i++) {
      const classId = data.classIds[i];
      const path = tree.path(2, classId);
      const names = [path[0], path[1], CATALOGUE_CLASS_NAMES[classId]];
      const dir = join(options.outDir, split, ...names);
      await mkdir(dir, { recursive: true });
      renderItem(data.images.subarray(i * 784, (i + 1) * 784), size, rng, pixels);
      const file = join(dir, `${String(i).padStart(6, '0')}.jpg`);
      await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
        .jpeg({ quality })
        .toFile(file);
      const image = relative(options.outDir, file);
      rows.push({ segments: image.split(sep), line: `${image},${names.join('/')},${names.join(',')}` });
    }
    // the folder reader's order (names sorted within each folder), so both give the same dataset
    rows.sort((a, b) => compareSegments(a.segments, b.segments));
    const body = rows.map((r) => r.line).join('\n');
    await writeFileAtomic(join(options.outDir, `${split}.csv`), `image,label,group,family,class\n${body}\n`);
    counts[split] = n;
  }
  return {
    folders: { train: join(options.outDir, 'train'), test: join(options.outDir, 'test') },
    manifests: { train: join(options.outDir, 'train.csv'), test: join(options.outDir, 'test.csv') },
    counts,
  };
}

/** Composites one 28×28 grey item onto a random background, in a random colour, into `out` (RGB bytes). */
function renderItem(item: Float32Array, size: number, rng: Rng, out: Buffer): void {
  const [c1, c2] = [randomColour(rng, 0.1, 0.5, 0.5, 1), randomColour(rng, 0.1, 0.5, 0.4, 1)];
  const angle = rng.next() * Math.PI * 2;
  const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
  const garment = randomColour(rng, 0.35, 1, 0.25, 0.95);
  const scale = (0.55 + 0.3 * rng.next()) * size;
  const x0 = rng.next() * (size - scale);
  const y0 = rng.next() * (size - scale);
  const texture = 12 * rng.next();
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = Math.min(1, Math.max(0, 0.5 + ((x / size - 0.5) * dx + (y / size - 0.5) * dy)));
      const noise = texture * (rng.next() - 0.5);
      // bilinear sample of the item at this pixel (0 outside it)
      const u = ((x - x0) / scale) * 28 - 0.5;
      const v = ((y - y0) / scale) * 28 - 0.5;
      const alpha = sampleBilinear(item, u, v);
      for (let k = 0; k < 3; k++) {
        const background = 255 * (c1[k] * (1 - t) + c2[k] * t) + noise;
        const shade = 255 * garment[k] * (0.35 + 0.65 * alpha);
        out[(y * size + x) * 3 + k] = Math.max(
          0,
          Math.min(255, Math.round(background * (1 - alpha) + shade * alpha)),
        );
      }
    }
  }
}

function sampleBilinear(item: Float32Array, u: number, v: number): number {
  if (u < -1 || v < -1 || u > 28 || v > 28) return 0;
  const iu = Math.floor(u);
  const iv = Math.floor(v);
  const fu = u - iu;
  const fv = v - iv;
  const at = (a: number, b: number) => (a < 0 || b < 0 || a > 27 || b > 27 ? 0 : item[b * 28 + a]);
  return (
    at(iu, iv) * (1 - fu) * (1 - fv) +
    at(iu + 1, iv) * fu * (1 - fv) +
    at(iu, iv + 1) * (1 - fu) * fv +
    at(iu + 1, iv + 1) * fu * fv
  );
}

/** RGB in [0, 1] from a random hue with saturation and value drawn from the given ranges. */
function randomColour(
  rng: Rng,
  sLo: number,
  sHi: number,
  vLo: number,
  vHi: number,
): [number, number, number] {
  const h = rng.next() * 6;
  const s = sLo + (sHi - sLo) * rng.next();
  const v = vLo + (vHi - vLo) * rng.next();
  const c = v * s;
  const x = c * (1 - Math.abs((h % 2) - 1));
  const m = v - c;
  const [r, g, b] =
    h < 1
      ? [c, x, 0]
      : h < 2
        ? [x, c, 0]
        : h < 3
          ? [0, c, x]
          : h < 4
            ? [0, x, c]
            : h < 5
              ? [x, 0, c]
              : [c, 0, x];
  return [r + m, g + m, b + m];
}

function compareSegments(a: readonly string[], b: readonly string[]): number {
  for (let k = 0; k < Math.min(a.length, b.length); k++) {
    if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  }
  return a.length - b.length;
}
