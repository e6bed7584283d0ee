import { readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { ContrastiveError } from '../errors.js';
import { kebab, type OptionSpec, type OptionValue } from '../options.js';
import { csvFields, type FeatureTableOptions, lines, tableExtension } from './featureTable.js';
import type { ManifestOptions } from './manifest.js';

/** File extensions read as images, everywhere (folders, loose files). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.png',
  '.jpg',
  '.jpeg',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
]);

/**
 * What `--data` names, resolved once ({@link resolveDataSource}) and read the same way by
 * training (`loadTrainingData`) and by every use command (`embedInputs`):
 * - `fashion-mnist`: a split of Fashion-MNIST (ids are row numbers);
 * - `image-folder`: a folder whose sub-folder tree is each image's label path (ids: relative paths);
 * - `images`: image files without labels (a flat folder, or one image file; ids: the paths);
 * - `image-manifest`: a CSV/JSONL with an image path and a label path per row (ids: the image
 *   paths relative to the manifest's folder);
 * - `table`: a CSV/JSONL/.npy feature table with a label path per row (ids: row numbers).
 */
export type DataSource =
  | { kind: 'fashion-mnist'; split: 'train' | 'test'; dataDir?: string }
  | { kind: 'image-folder'; path: string }
  | { kind: 'images'; files: readonly string[] }
  | ({ kind: 'image-manifest'; path: string } & ManifestOptions)
  | ({ kind: 'table'; path: string } & FeatureTableOptions);

/** The kinds of {@link DataSource}. */
export type DataSourceKind = DataSource['kind'];

/** How to read a CSV/JSONL `--data`: decided by its content (`auto`) or named. */
export type DataKindChoice = 'auto' | 'manifest' | 'table';

/** Options of {@link resolveDataSource}: the companions of `--data`. */
export interface DataSourceOptions {
  /** CSV/JSONL: `manifest` or `table` instead of deciding by content. Default `auto`. */
  dataKind?: DataKindChoice;
  /** Fashion-MNIST split when the text does not name one (`fashion-mnist:train`). Default `test`. */
  split?: 'train' | 'test';
  /** Fashion-MNIST folder. */
  dataDir?: string;
  /** A manifest's image column (naming it makes a CSV/JSONL a manifest). */
  imageColumn?: string;
  labelColumn?: string;
  levelColumns?: readonly string[];
  separator?: string;
  delimiter?: string;
  /** `.npy` tables: the labels file. Default `<data>.labels.txt`. */
  labelsPath?: string;
  /** Who asks, for messages (`train`, `contrastive index`, ...). Default `contrastive`. */
  command?: string;
  /** The option that named `data`, for messages (`testData`, `calibrateOn`). Default `data`. */
  flag?: string;
}

const DEFAULT_IMAGE_COLUMN = 'image';

/**
 * The one parser of `--data`: `fashion-mnist` / `fashion-mnist:train|test`; a folder (with class
 * sub-folders: an image folder, else its images, unlabelled); an image file; a `.npy` table; a
 * CSV/JSONL that is an image manifest or a feature table. A CSV/JSONL is a **manifest** when
 * `dataKind` says so, when `imageColumn` is given, or when its header (first record) has an
 * `image` column (key); a **table** when `dataKind` says so, or when it has no `image` column. A
 * file that reads either way — an `image` column and every other non-label column numeric (the
 * `image` value a number too, as a table's feature would be), or a JSONL record with both
 * `image` and a `features` vector — or one without an `image` column but with a column of image
 * paths, is ambiguous: a one-line error saying which option chooses.
 */
export async function resolveDataSource(data: string, options: DataSourceOptions = {}): Promise<DataSource> {
  const who = options.command ?? 'contrastive';
  const where = `${who}: --${kebab(options.flag ?? 'data')} ${data}`;
  const fmnist = /^fashion-mnist(?::(train|test))?$/.exec(data);
  if (fmnist)
    return {
      kind: 'fashion-mnist',
      split: (fmnist[1] as 'train' | 'test' | undefined) ?? options.split ?? 'test',
      ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    };
  const dataKind = options.dataKind ?? 'auto';
  if (dataKind !== 'auto' && dataKind !== 'manifest' && dataKind !== 'table')
    throw new ContrastiveError(
      `${who}: --data-kind must be auto, manifest or table, but got ${JSON.stringify(dataKind)}.`,
    );
  const info = await stat(data).catch(() => null);
  if (!info)
    throw new ContrastiveError(
      `${where}: no such file or folder (or use fashion-mnist, fashion-mnist:train).`,
    );
  if (info.isDirectory()) {
    const entries = await readdir(data, { withFileTypes: true });
    if (entries.some((e) => e.isDirectory() && !e.name.startsWith('.')))
      return { kind: 'image-folder', path: data };
    return { kind: 'images', files: await listLooseImages(where, data) };
  }
  if (IMAGE_EXTENSIONS.has(extname(data).toLowerCase())) return { kind: 'images', files: [data] };
  const table = (): DataSource => ({
    kind: 'table',
    path: data,
    ...pick(options, ['labelColumn', 'levelColumns', 'separator', 'delimiter']),
    labelsPath:
      tableExtension(data) === 'npy' ? (options.labelsPath ?? `${data}.labels.txt`) : options.labelsPath,
  });
  const manifest = (): DataSource => ({
    kind: 'image-manifest',
    path: data,
    ...pick(options, ['imageColumn', 'labelColumn', 'levelColumns', 'separator', 'delimiter']),
  });
  if (tableExtension(data) === 'npy') {
    if (dataKind === 'manifest' || options.imageColumn !== undefined)
      throw new ContrastiveError(`${where}: a .npy file is a feature table, not an image manifest.`);
    return table();
  }
  if (dataKind === 'table') {
    if (options.imageColumn !== undefined)
      throw new ContrastiveError(
        `${where}: --image-column makes it an image manifest but --data-kind says table; pass one of them.`,
      );
    return table();
  }
  if (dataKind === 'manifest' || options.imageColumn !== undefined) return manifest();
  const evidence = await sniff(data, options);
  const column = JSON.stringify(evidence.imageColumn);
  if (evidence.manifest && evidence.table)
    throw new ContrastiveError(
      `${where}: ambiguous: it has an ${column} ${evidence.jsonl ? 'key (an image manifest) and a "features" vector' : 'column (an image manifest) and every column besides the label is numeric'} (a feature table); pass --data-kind manifest or --data-kind table.`,
    );
  if (evidence.manifest) return manifest();
  if (evidence.paths.length > 0)
    throw new ContrastiveError(
      `${where}: ambiguous: it has no ${column} column but ${JSON.stringify(evidence.paths[0])} holds image paths; pass --image-column ${evidence.paths[0]} to read it as an image manifest, or --data-kind table.`,
    );
  return table();
}

function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (from[k] !== undefined) out[k] = from[k];
  return out;
}

/** What the header and the first record of a CSV/JSONL say about it. */
interface Evidence {
  imageColumn: string;
  jsonl: boolean;
  /** It could be an image manifest: it has the image column (key). */
  manifest: boolean;
  /**
   * It could be a feature table: every column but the label's holds a number (a table reads each
   * as a feature); in JSONL, a `features` array of numbers.
   */
  table: boolean;
  /** Columns (keys) other than the label's whose first value names an image file. */
  paths: string[];
}

async function sniff(path: string, options: DataSourceOptions): Promise<Evidence> {
  const imageColumn = options.imageColumn ?? DEFAULT_IMAGE_COLUMN;
  const labels = new Set(options.levelColumns ?? [options.labelColumn ?? 'label']);
  const ext = tableExtension(path);
  const jsonl = ext === 'jsonl' || ext === 'ndjson';
  const evidence: Evidence = { imageColumn, jsonl, manifest: false, table: false, paths: [] };
  const looksLikeImage = (v: unknown) =>
    typeof v === 'string' && IMAGE_EXTENSIONS.has(extname(v.trim()).toLowerCase());
  const isNumber = (v: string) => v.trim() !== '' && Number.isFinite(Number(v));
  let header: string[] | null = null;
  for await (const [line] of lines(path, options.command ?? 'contrastive')) {
    if (line.trim() === '') continue;
    if (jsonl) {
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch {
        return evidence; // the reader reports the line
      }
      if (record === null || typeof record !== 'object') return evidence;
      const fields = record as Record<string, unknown>;
      const features = fields.features;
      evidence.manifest = imageColumn in fields;
      evidence.table = Array.isArray(features) && features.every((x) => typeof x === 'number');
      evidence.paths = Object.keys(fields).filter((k) => !labels.has(k) && looksLikeImage(fields[k]));
      return evidence;
    }
    const fields = csvFields(line, options.delimiter ?? ',');
    if (header === null) {
      header = fields.map((f) => f.trim());
      evidence.manifest = header.includes(imageColumn);
      continue;
    }
    const others = header.flatMap((column, i) => (labels.has(column) ? [] : [[column, fields[i] ?? '']]));
    evidence.table = others.length > 0 && others.every(([, value]) => isNumber(value));
    evidence.paths = others.filter(([, value]) => looksLikeImage(value)).map(([column]) => column);
    return evidence;
  }
  return evidence;
}

async function listLooseImages(where: string, dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = entries
    .filter(
      (e) => e.isFile() && !e.name.startsWith('.') && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase()),
    )
    .map((e) => join(dir, e.name))
    .sort();
  if (files.length === 0)
    throw new ContrastiveError(`${where}: no images (${[...IMAGE_EXTENSIONS].join(', ')}) in this folder.`);
  return files;
}

/**
 * The `--data` block of every use command (`index`, `embed --data`, `predict`, `dedupe`, ...),
 * declared once; {@link dataSourceOptions} reads its values.
 */
export const DATA_SOURCE_OPTIONS = [
  {
    name: 'data',
    type: 'string',
    doc: 'what to read: fashion-mnist[:train|:test], an image folder (sub-folders = label paths), a folder of images, an image file, an image manifest (.csv/.jsonl with an image column) or a feature table (.csv/.jsonl/.npy); see docs/data.md',
  },
  {
    name: 'dataKind',
    type: 'string',
    choices: ['auto', 'manifest', 'table'],
    default: 'auto',
    doc: 'a .csv/.jsonl --data: an image manifest or a feature table (auto: an image column makes a manifest, none a table; a file that reads either way is an error)',
  },
  {
    name: 'split',
    type: 'string',
    choices: ['train', 'test'],
    default: 'test',
    doc: 'Fashion-MNIST split when --data is fashion-mnist',
  },
  {
    name: 'dataDir',
    type: 'string',
    doc: "Fashion-MNIST folder (default: Debian's, else the embedded subset)",
  },
  { name: 'limit', type: 'integer', min: 1, doc: 'read the first N items only (any kind of --data)' },
  {
    name: 'imageColumn',
    type: 'string',
    doc: 'manifests: the image-path column (naming it makes --data a manifest; default image)',
  },
  { name: 'labelColumn', type: 'string', doc: 'manifests and tables: the label-path column (default label)' },
  {
    name: 'levelColumns',
    type: 'list',
    doc: 'manifests and tables: one column per level, coarsest first, instead of a label-path column',
  },
  { name: 'separator', type: 'string', doc: 'separator inside label paths (default /)' },
  {
    name: 'cacheDir',
    type: 'string',
    doc: "images are decoded once into a uint8 cache here and embedded in batches from it (default: the run's cache/ folder)",
  },
] as const satisfies readonly OptionSpec[];

/** What {@link dataSourceOptions} returns: the source and how much of it to read. */
export interface DataSourceSelection {
  source: DataSource;
  /** The first `limit` items only. */
  limit?: number;
  /** Where images are decoded once (`--cache-dir`). */
  cacheDir?: string;
}

/**
 * Reads the values of {@link DATA_SOURCE_OPTIONS} (as parsed by a command's option table):
 * `--data` (`flag` names another option of the same forms, e.g. `calibrateOn`) resolved by
 * {@link resolveDataSource}. A missing `--data` is an error saying what to pass.
 */
export async function dataSourceOptions(
  command: string,
  values: Readonly<Record<string, OptionValue | undefined>>,
  flag = 'data',
): Promise<DataSourceSelection> {
  const text = values[flag];
  if (typeof text !== 'string' || text === '')
    throw new ContrastiveError(
      `${command}: --${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required (${DATA_SOURCE_OPTIONS[0].doc}).`,
    );
  const str = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const list = values.levelColumns;
  const source = await resolveDataSource(text, {
    command,
    flag,
    dataKind: (str('dataKind') ?? 'auto') as DataKindChoice,
    split: str('split') as 'train' | 'test' | undefined,
    dataDir: str('dataDir'),
    imageColumn: str('imageColumn'),
    labelColumn: str('labelColumn'),
    levelColumns: Array.isArray(list)
      ? list.map(String)
      : typeof list === 'string'
        ? list.split(',')
        : undefined,
    separator: str('separator'),
  });
  const limit = values.limit;
  return {
    source,
    ...(typeof limit === 'number' ? { limit } : {}),
    ...(str('cacheDir') !== undefined ? { cacheDir: str('cacheDir') } : {}),
  };
}
