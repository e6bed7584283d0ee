import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { ContrastiveError } from '../errors.js';
import {
  decodeAll,
  type ImageDecodeOptions,
  type ResolvedDecodeOptions,
  resolveDecodeOptions,
} from './imageDecode.js';
import { IMAGE_EXTENSIONS } from './sources.js';
import { takeRows } from './splits.js';

/** Options of {@link readImageFolder}. */
export interface ImageFolderOptions extends ImageDecodeOptions {
  /**
   * Leaves at different depths are an error unless `'repeat-leaf'` pads short paths with their
   * last folder, or `'keep'` returns them as they are (the caller pads or marks them unknown).
   */
  pad?: 'error' | 'repeat-leaf' | 'keep';
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
 * are visited in sorted order, decoded (in parallel) and resized with `sharp`, colour or grey at
 * any size.
 */
export async function readImageFolder(root: string, options: ImageFolderOptions = {}): Promise<ImageFolder> {
  const [h, w] = options.size ?? [28, 28];
  const channels = options.channels ?? 1;
  const { files, paths } = await listImageFolder(root, options);
  const decode = resolveDecodeOptions('readImageFolder', { ...options, size: [h, w], channels });
  const decoded = await decodeImageList(files, decode, (i, reason) => {
    if (!options.skipUnreadable) {
      throw new ContrastiveError(
        `readImageFolder: cannot decode ${files[i]}: ${reason} (pass skipUnreadable: true, the CLI's --skip-unreadable, to skip such files).`,
      );
    }
  });
  const { images, kept, skipped } = decoded;
  return {
    images,
    shape: [kept.length, h, w, channels],
    paths: kept.map((i) => paths[i]),
    files: kept.map((i) => files[i]),
    skipped,
  };
}

/**
 * The images of a folder tree and their label paths (the folders below `root`), in the order
 * {@link readImageFolder} reads them, without decoding anything: what a streaming reader (the
 * image cache) starts from.
 */
export async function listImageFolder(
  root: string,
  options: Pick<ImageFolderOptions, 'pad'> = {},
): Promise<{ files: string[]; paths: string[][] }> {
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
  const depth = paths.reduce((m, p) => Math.max(m, p.length), 0);
  const shallow = paths.findIndex((p) => p.length !== depth);
  if (shallow >= 0) {
    if (options.pad !== 'repeat-leaf' && options.pad !== 'keep') {
      throw new ContrastiveError(
        `readImageFolder: ${files[shallow]} is ${paths[shallow].length} folder(s) deep but others are ${depth}; pass pad: 'repeat-leaf' (the CLI pads them, or keeps them partial with --short-labels unknown) to pad shallow labels.`,
      );
    }
    if (options.pad === 'repeat-leaf')
      paths = paths.map((p) => [...p, ...new Array(depth - p.length).fill(p[p.length - 1])]);
  }
  return { files, paths };
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

/** Decoded images in file order, as floats in [0, 1]; failures go to `failed` (which may throw). */
export async function decodeImageList(
  files: readonly string[],
  decode: ResolvedDecodeOptions,
  failed: (index: number, reason: string) => void,
): Promise<{ images: Float32Array; kept: number[]; skipped: { file: string; reason: string }[] }> {
  const size = decode.height * decode.width * decode.channels;
  const all = new Float32Array(files.length * size);
  const ok = new Uint8Array(files.length);
  const reasons = new Map<number, string>();
  await decodeAll(
    files,
    decode,
    (i, pixels) => {
      const offset = i * size;
      for (let k = 0; k < size; k++) all[offset + k] = pixels[k] / 255;
      ok[i] = 1;
    },
    (i, reason) => {
      failed(i, reason);
      reasons.set(i, reason);
    },
  );
  const kept: number[] = [];
  for (let i = 0; i < files.length; i++) if (ok[i]) kept.push(i);
  if (kept.length === files.length) return { images: all, kept, skipped: [] };
  const images = takeRows(all, size, kept);
  const skipped = [...reasons].sort((a, b) => a[0] - b[0]).map(([i, reason]) => ({ file: files[i], reason }));
  return { images, kept, skipped };
}
