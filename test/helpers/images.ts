import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashionMnist.js';

/**
 * The first `count` images of the embedded Fashion-MNIST test split as grey PNGs
 * `<dir>/<folder>/<i>.png`: their paths relative to `dir` and their label paths (the 3-level tree's
 * names, some of which hold a `/`), for manifests and folders in tests.
 */
export async function writeFashionPngs(
  dir: string,
  folder: string,
  count: number,
): Promise<{ files: string[]; labels: string[][] }> {
  const fm = await loadFashionMnist({ split: 'test', dataDir: EMBEDDED_FASHION_MNIST_DIR, limit: count });
  await mkdir(join(dir, folder), { recursive: true });
  const files: string[] = [];
  const labels: string[][] = [];
  for (let i = 0; i < count; i++) {
    const raw = Buffer.from(
      Array.from(fm.images.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255)),
    );
    const file = `${folder}/${i}.png`;
    await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(join(dir, file));
    files.push(file);
    labels.push(fm.tree.path(2, fm.classIds[i]));
  }
  return { files, labels };
}
