import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { ContrastiveError } from '../errors.js';
import { parseLabelPath } from '../hierarchy/labelPath.js';
import {
  type CsvColumns,
  csvFields,
  eachCsvRecord,
  jsonlObject,
  lines,
  tableExtension,
  unterminatedLabelWarning,
} from './featureTable.js';
import { type ImageDecodeOptions, resolveDecodeOptions } from './imageDecode.js';
import { decodeImageList } from './imageFolder.js';

/** Options of {@link readManifest}: which columns (CSV) or keys (JSONL) hold what. */
export interface ManifestOptions {
  /** `csv` or `jsonl`; default from the extension (`.jsonl`/`.ndjson`, else CSV; `.gz` looked through). */
  format?: 'csv' | 'jsonl';
  /** The column (CSV) or key (JSONL) holding each image's path. Default `image`. */
  imageColumn?: string;
  /** The column or key holding the label path (`Clothes/Tops/T-shirt`; in JSONL also an array). Default `label`. */
  labelColumn?: string;
  /** One column or key per level instead of a path column, coarsest first. */
  levelColumns?: readonly string[];
  /** Separator inside a label path. Default `/`. */
  separator?: string;
  /** CSV field delimiter. Default `,`. */
  delimiter?: string;
}

/**
 * A table of images and their label paths. Paths are as the file gives them: of uneven depth if
 * the file's are (see `loadTrainingData` for padding).
 */
export interface Manifest {
  /** Absolute image paths, relative ones resolved against the manifest's folder. */
  files: string[];
  /** Label path of each image, coarsest first. */
  paths: string[][];
  /** The manifest line of each image (1-based, counting the CSV header), for messages. */
  lines: number[];
  /** What the reader noticed but did not fail on; the library never prints. */
  warnings: string[];
}

/** {@link readImageManifest}'s result: decoded pixels with the manifest. */
export interface ImageManifest extends Manifest {
  /** `[N, H, W, C]` row-major, values in [0, 1]. */
  images: Float32Array;
  shape: [number, number, number, number];
}

const DEFAULT_IMAGE_COLUMN = 'image';

function manifestFormat(path: string, options: ManifestOptions): 'csv' | 'jsonl' {
  const ext = tableExtension(path);
  const format = options.format ?? (ext === 'jsonl' || ext === 'ndjson' ? 'jsonl' : 'csv');
  if (format !== 'csv' && format !== 'jsonl')
    throw new ContrastiveError(
      `readManifest: format must be 'csv' or 'jsonl', but got ${JSON.stringify(format)}.`,
    );
  return format;
}

/**
 * Whether `path` is an image manifest rather than a feature table: a CSV whose header has the
 * image column, or a JSONL whose first record has the image key (default `image`).
 */
export async function isImageManifest(path: string, options: ManifestOptions = {}): Promise<boolean> {
  const ext = tableExtension(path);
  if (ext !== 'csv' && ext !== 'jsonl' && ext !== 'ndjson' && ext !== 'tsv' && ext !== 'txt') return false;
  const column = options.imageColumn ?? DEFAULT_IMAGE_COLUMN;
  for await (const [line] of lines(path, 'readManifest')) {
    if (line.trim() === '') continue;
    if (manifestFormat(path, options) === 'jsonl') {
      try {
        const record = JSON.parse(line) as unknown;
        return record !== null && typeof record === 'object' && column in record;
      } catch {
        return false;
      }
    }
    return csvFields(line, options.delimiter ?? ',').some((f) => f.trim() === column);
  }
  return false;
}

/**
 * Reads an image manifest: a CSV with a header (an image column and a label-path column, or a
 * column per level) or a JSONL file (`{"image": "a/1.png", "label": "Clothes/Tops"}` per line).
 * Relative image paths are resolved against the manifest's folder. A missing column lists the
 * columns found; a file cut off mid-line is an error naming the line.
 *
 * @example
 * ```ts
 * const m = await readManifest('catalogue/items.csv', { labelColumn: 'category' });
 * ```
 */
export async function readManifest(path: string, options: ManifestOptions = {}): Promise<Manifest> {
  const format = manifestFormat(path, options);
  const out: Manifest = { files: [], paths: [], lines: [], warnings: [] };
  const base = dirname(resolve(path));
  const name = basename(path);
  const separator = options.separator ?? '/';
  const imageColumn = options.imageColumn ?? DEFAULT_IMAGE_COLUMN;
  const labelColumn = options.labelColumn ?? 'label';
  const fn = 'readManifest';
  const splitPath = (text: string, where: string): string[] => {
    const segments = parseLabelPath(text, separator).map((s) => s.trim());
    if (text.trim() === '' || segments.some((s) => s === ''))
      throw new ContrastiveError(
        `${fn}: ${name} ${where}: expected a label path like "Clothes${separator}Tops", but got ${JSON.stringify(text)}.`,
      );
    return segments;
  };
  const addImage = (value: string, n: number, where: string) => {
    if (value.trim() === '')
      throw new ContrastiveError(`${fn}: ${name} ${where}: expected an image path, but got "".`);
    out.files.push(isAbsolute(value.trim()) ? value.trim() : resolve(base, value.trim()));
    out.lines.push(n);
  };
  if (format === 'csv') {
    let unterminated = 0;
    let image = -1;
    const header = (fields: string[]): CsvColumns => {
      const found = () => fields.map((h) => JSON.stringify(h)).join(', ');
      const find = (col: string, what: string, option: string) => {
        const i = fields.indexOf(col);
        if (i < 0)
          throw new ContrastiveError(
            `${fn}: ${name} line 1: expected ${what} column ${JSON.stringify(col)} in the header, but the columns are ${found()}; pass ${option} to name another.`,
          );
        return i;
      };
      image = find(imageColumn, 'an image', 'imageColumn');
      const label = options.levelColumns
        ? options.levelColumns.map((c) => find(c, 'a level', 'levelColumns'))
        : [find(labelColumn, 'a label-path', 'labelColumn')];
      return { header: fields, label, features: [] };
    };
    await eachCsvRecord(fn, path, options, header, (fields, n, columns, terminated) => {
      if (!terminated) unterminated = n;
      const column = (i: number) => `line ${n}, column ${JSON.stringify(columns.header[i])}`;
      addImage(fields[image], n, column(image));
      if (options.levelColumns) {
        out.paths.push(
          columns.label.map((i) => {
            const v = fields[i].trim();
            if (v === '')
              throw new ContrastiveError(`${fn}: ${name} ${column(i)}: expected a label, but got "".`);
            return v;
          }),
        );
      } else out.paths.push(splitPath(fields[columns.label[0]], column(columns.label[0])));
    });
    if (unterminated > 0 && out.paths.length > 0) {
      const warning = unterminatedLabelWarning(name, unterminated, out.paths, separator);
      if (warning) out.warnings.push(warning);
    }
  } else {
    for await (const [line, n, terminated] of lines(path, fn)) {
      if (line.trim() === '') continue;
      const fields = jsonlObject(fn, name, line, n, terminated);
      const missing = (key: string, option: string) =>
        new ContrastiveError(
          `${fn}: ${name} line ${n}: expected a key ${JSON.stringify(key)}, but the keys are ${Object.keys(
            fields,
          )
            .map((k) => JSON.stringify(k))
            .join(', ')}; pass ${option} to name another.`,
        );
      if (!(imageColumn in fields)) throw missing(imageColumn, 'imageColumn');
      const imageValue = fields[imageColumn];
      if (typeof imageValue !== 'string')
        throw new ContrastiveError(
          `${fn}: ${name} line ${n}, key ${JSON.stringify(imageColumn)}: expected an image path, but got ${JSON.stringify(imageValue)}.`,
        );
      addImage(imageValue, n, `line ${n}, key ${JSON.stringify(imageColumn)}`);
      if (options.levelColumns) {
        out.paths.push(
          options.levelColumns.map((k) => {
            if (!(k in fields)) throw missing(k, 'levelColumns');
            const v = fields[k];
            if ((typeof v !== 'string' && typeof v !== 'number') || String(v).trim() === '')
              throw new ContrastiveError(
                `${fn}: ${name} line ${n}, key ${JSON.stringify(k)}: expected a label, but got ${JSON.stringify(v)}.`,
              );
            return String(v).trim();
          }),
        );
      } else {
        if (!(labelColumn in fields)) throw missing(labelColumn, 'labelColumn');
        const label = fields[labelColumn];
        const where = `line ${n}, key ${JSON.stringify(labelColumn)}`;
        if (typeof label === 'string') out.paths.push(splitPath(label, where));
        else if (
          Array.isArray(label) &&
          label.length > 0 &&
          label.every((s) => (typeof s === 'string' || typeof s === 'number') && String(s).trim() !== '')
        )
          out.paths.push(label.map((s) => String(s).trim()));
        else
          throw new ContrastiveError(
            `${fn}: ${name} ${where}: expected a label path like "Clothes${separator}Tops" or an array of names, but got ${JSON.stringify(label)}.`,
          );
      }
    }
  }
  if (out.files.length === 0)
    throw new ContrastiveError(`${fn}: ${name} must list at least one image, but lists none.`);
  return out;
}

/**
 * Reads a manifest ({@link readManifest}) and decodes its images like {@link readImageFolder}
 * (same sizes, channels and pixel values), in the manifest's order. An image that is missing or
 * cannot be decoded is an error naming the image, its resolved path and the manifest line.
 */
export async function readImageManifest(
  path: string,
  options: ManifestOptions & ImageDecodeOptions = {},
): Promise<ImageManifest> {
  const manifest = await readManifest(path, options);
  const decode = resolveDecodeOptions('readImageManifest', options);
  const name = basename(path);
  const { images } = await decodeImageList(manifest.files, decode, (i, reason) => {
    throw new ContrastiveError(
      `readImageManifest: ${name} line ${manifest.lines[i]}: cannot read image ${manifest.files[i]}: ${reason}.`,
    );
  });
  return {
    ...manifest,
    images,
    shape: [manifest.files.length, decode.height, decode.width, decode.channels],
  };
}
