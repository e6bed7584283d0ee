import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { ContrastiveError } from '../errors.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff']);

/** Options of {@link readImageFolder}. */
export interface ImageFolderOptions {
  /** Output size `[height, width]`; images are resized to it (stretched). Default `[28, 28]`. */
  size?: readonly [number, number];
  /** 1 (grey) or 3 (RGB). Default 1. */
  channels?: 1 | 3;
  /** Leaves at different depths are an error unless `'repeat-leaf'` pads short paths with their last folder. */
  pad?: 'error' | 'repeat-leaf';
  /** Skip (and list) unreadable images instead of failing on the first one. Default false. */
  skipUnreadable?: boolean;
}

/** {@link readImageFolder}'s result. */
export interface ImageFolder {
  /** `[N, H, W, C]` row-major, values in [0, 1]. */
  images: Float32Array;
  shape: [number, number, number, number];
  /** Label path of each image: its folders below the root, coarsest first. */
  paths: string[][];
  files: string[];
  /** Images that could not be decoded (only with `skipUnreadable`). */
  skipped: { file: string; reason: string }[];
}

/**
 * Reads `root/Clothes/Tops/T-shirt/*.png|jpg|...`: the folder tree is the label hierarchy, files
 * are visited in sorted order, decoded and resized with `sharp`.
 */
export async function readImageFolder(root: string, options: ImageFolderOptions = {}): Promise<ImageFolder> {
  const [h, w] = options.size ?? [28, 28];
  const channels = options.channels ?? 1;
  const files = await listImages(root);
  if (files.length === 0)
    throw new ContrastiveError(
      `readImageFolder: no images (${[...IMAGE_EXTENSIONS].join(', ')}) under ${root}.`,
    );
  let paths = files.map((f) => relative(root, f).split(sep).slice(0, -1));
  const rootImages = paths.filter((p) => p.length === 0).length;
  if (rootImages > 0)
    throw new ContrastiveError(
      `readImageFolder: ${rootImages} image(s) directly in ${root}; put every image in a class folder.`,
    );
  const depth = Math.max(...paths.map((p) => p.length));
  const shallow = paths.findIndex((p) => p.length !== depth);
  if (shallow >= 0) {
    if (options.pad !== 'repeat-leaf') {
      throw new ContrastiveError(
        `readImageFolder: ${files[shallow]} is ${paths[shallow].length} folder(s) deep but others are ${depth}; pass pad: 'repeat-leaf' to pad shallow labels.`,
      );
    }
    paths = paths.map((p) => [...p, ...new Array(depth - p.length).fill(p[p.length - 1])]);
  }
  const { default: sharp } = await import('sharp');
  const size = h * w * channels;
  const images = new Float32Array(files.length * size);
  const kept: number[] = [];
  const skipped: ImageFolder['skipped'] = [];
  for (const [i, file] of files.entries()) {
    try {
      let pipeline = sharp(file).resize(w, h, { fit: 'fill' }).removeAlpha();
      pipeline = channels === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb');
      const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== channels) throw new Error(`decoded ${info.channels} channels`);
      const offset = kept.length * size;
      for (let k = 0; k < size; k++) images[offset + k] = data[k] / 255;
      kept.push(i);
    } catch (error) {
      const reason = (error as Error).message;
      if (!options.skipUnreadable) {
        throw new ContrastiveError(
          `readImageFolder: cannot decode ${file}: ${reason} (pass skipUnreadable: true to skip such files).`,
        );
      }
      skipped.push({ file, reason });
    }
  }
  return {
    images: images.slice(0, kept.length * size),
    shape: [kept.length, h, w, channels],
    paths: kept.map((i) => paths[i]),
    files: kept.map((i) => files[i]),
    skipped,
  };
}

async function listImages(dir: string): Promise<string[]> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new ContrastiveError(`readImageFolder: ${dir} is not a folder.`);
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  await walk(dir);
  return out;
}
