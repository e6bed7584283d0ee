import { createReadStream } from 'node:fs';
import { basename, extname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { ContrastiveError } from '../errors.js';
import { parseLabelPath } from '../hierarchy/labelPath.js';
import { type FromPathsOptions, LabelTree } from '../hierarchy/labelTree.js';
import { readNpyMatrix } from './npy.js';

/** Vectors with a label path each: what users with existing embeddings bring. */
export interface FeatureTable {
  /** `[numRows, dim]` row-major. */
  features: Float32Array;
  numRows: number;
  dim: number;
  /**
   * Label path of each row as its segments, coarsest first (`['Clothes', 'Tops', 'T-shirt']`):
   * segments rather than joined strings, so a name may contain the separator of another file.
   */
  paths: string[][];
  /**
   * Things worth telling the user that are not errors (e.g. a last line without a newline whose
   * label appears nowhere else: perhaps a cut-off file). The library never prints them.
   */
  warnings?: string[];
}

/** Options of {@link readFeatureTable}. */
export interface FeatureTableOptions {
  /**
   * `csv`, `jsonl` or `npy`; default from the file extension (`.jsonl`/`.ndjson`, `.npy`, else
   * CSV). A `.gz` suffix (`items.csv.gz`, `items.jsonl.gz`) is read through gzip.
   */
  format?: 'csv' | 'jsonl' | 'npy';
  /** CSV (and a CSV labels file of `.npy`): the label-path column. Default `label`. */
  labelColumn?: string;
  /** CSV (and a CSV labels file of `.npy`): one column per level instead of a path column, coarsest first. */
  levelColumns?: readonly string[];
  /** CSV: the feature columns (default: every column that is not a label column). */
  featureColumns?: readonly string[];
  /** CSV: the field delimiter. Default `,`. */
  delimiter?: string;
  /** JSONL: the key holding the vector. Default `features`. */
  featuresKey?: string;
  /** JSONL: the key holding the label path (a string, or an array of segments). Default: `labelColumn`, else `label`. */
  labelKey?: string;
  /** JSONL: one key per level instead of a path key, coarsest first. */
  levelKeys?: readonly string[];
  /** Separator inside a label path. Default `/`. */
  separator?: string;
  /**
   * `.npy`: the labels file (required for npy): a text file with one label path per line, or a
   * `.csv` file read with `labelColumn` / `levelColumns`.
   */
  labelsPath?: string;
}

/**
 * Reads a feature table — CSV (a label-path column, or a column per level, and numeric feature
 * columns), JSONL (`{"features": [...], "label": "A/B/C"}` per line) or `.npy` `[N, D]` with a
 * labels file — streaming line by line (`.npy` in chunks). Errors name the file, the line, the
 * field and what was expected, e.g.
 * `readCsv: items.csv line 17, column "path": expected a label path like "Clothes/Tops", but got "".`
 *
 * @example
 * ```ts
 * const table = await readFeatureTable('items.csv', { labelColumn: 'path' });
 * const { tree, labels } = featureTableLabels(table); // LabelTree + [N, L] rows
 * ```
 */
export async function readFeatureTable(
  path: string,
  options: FeatureTableOptions = {},
): Promise<FeatureTable> {
  const ext = tableExtension(path);
  const format =
    options.format ?? (ext === 'jsonl' || ext === 'ndjson' ? 'jsonl' : ext === 'npy' ? 'npy' : 'csv');
  if (format !== 'csv' && format !== 'jsonl' && format !== 'npy') {
    throw new ContrastiveError(
      `readFeatureTable: format must be 'csv', 'jsonl' or 'npy', but got ${JSON.stringify(format)}.`,
    );
  }
  const table =
    format === 'npy'
      ? await readNpyTable(path, options)
      : format === 'jsonl'
        ? await readJsonl(path, options)
        : await readCsv(path, options);
  if (table.numRows === 0) {
    throw new ContrastiveError(
      `readFeatureTable: ${basename(path)} must hold at least one row, but holds none.`,
    );
  }
  return table;
}

/** Options of {@link featureTableLabels}. */
export interface FeatureTableLabelsOptions extends Pick<FromPathsOptions, 'levelNames' | 'allowSharedNames'> {
  /** Encode with this tree (e.g. a training run's) instead of building one from the table's paths. */
  tree?: LabelTree;
  /** Short paths: an error by default, or padded by repeating their leaf. */
  padToDepth?: 'error' | 'repeat-leaf';
}

/** Builds (or reuses) the label tree of a table and encodes its paths to `[N, L]` rows. */
export function featureTableLabels(
  table: Pick<FeatureTable, 'paths'>,
  options: FeatureTableLabelsOptions = {},
): { tree: LabelTree; labels: Int32Array } {
  const tree = options.tree ?? LabelTree.fromPaths(table.paths, options);
  return { tree, labels: tree.encode(table.paths, { padToDepth: options.padToDepth }) };
}

/** Accumulates rows into one growing Float32Array (no per-row arrays kept). */
class RowBuffer {
  private data = new Float32Array(1 << 16);
  numRows = 0;
  dim = -1;
  readonly paths: string[][] = [];

  /** Starts a row of `dim` values and returns its offset; the caller writes into {@link values}. */
  begin(dim: number, where: () => string): number {
    if (this.dim < 0) this.dim = dim;
    if (dim !== this.dim) {
      throw new ContrastiveError(
        `${where()}: expected ${this.dim} features like the first row, but got ${dim}.`,
      );
    }
    if (dim === 0)
      throw new ContrastiveError(`${where()}: expected at least one feature, but the row has none.`);
    const need = (this.numRows + 1) * dim;
    if (need > this.data.length) {
      const grown = new Float32Array(Math.max(need, this.data.length * 2));
      grown.set(this.data);
      this.data = grown;
    }
    return this.numRows * dim;
  }

  get values(): Float32Array {
    return this.data;
  }

  end(path: string[]): void {
    this.paths.push(path);
    this.numRows++;
  }

  table(): FeatureTable {
    const dim = Math.max(this.dim, 0);
    return {
      features: this.data.slice(0, this.numRows * dim),
      numRows: this.numRows,
      dim,
      paths: this.paths,
    };
  }
}

function splitPath(text: string, separator: string, where: () => string): string[] {
  const segments = parseLabelPath(text, separator).map((s) => s.trim());
  if (text.trim() === '' || segments.some((s) => s === '')) {
    throw new ContrastiveError(
      `${where()}: expected a label path like "Clothes${separator}Tops", but got ${JSON.stringify(text)}.`,
    );
  }
  return segments;
}

/** The extension that decides a table's format, lower case, with a `.gz` suffix looked through. */
export function tableExtension(path: string): string {
  const lower = path.toLowerCase();
  const inner = lower.endsWith('.gz') ? lower.slice(0, -3) : lower;
  return extname(inner).slice(1);
}

/**
 * The lines of a file, numbered from 1, streamed (through gzip for `.gz`); a leading byte-order
 * mark is dropped, `\r\n` ends a line like `\n`. The third element is false only for a last line
 * that no newline ends.
 */
export async function* lines(path: string, fn: string): AsyncGenerator<[string, number, boolean]> {
  const file = createReadStream(path);
  await new Promise<void>((resolve, reject) => {
    file.once('open', () => resolve());
    file.once('error', (error: NodeJS.ErrnoException) =>
      reject(new ContrastiveError(`${fn}: cannot read ${path}: ${error.code ?? error.message}.`)),
    );
  });
  const gzip = path.toLowerCase().endsWith('.gz');
  let source: NodeJS.ReadableStream = file;
  if (gzip) {
    const gunzip = createGunzip();
    file.on('error', (error) => gunzip.destroy(error));
    source = file.pipe(gunzip);
  }
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let n = 0;
  const clean = (line: string) => {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    return n === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  };
  const chunks = source[Symbol.asyncIterator]();
  while (true) {
    let chunk: IteratorResult<string | Buffer>;
    try {
      chunk = await chunks.next();
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      throw new ContrastiveError(
        `${fn}: cannot read ${path}: ${gzip ? `not a valid gzip file (${e.message})` : (e.code ?? e.message)}.`,
      );
    }
    if (chunk.done) break;
    rest += typeof chunk.value === 'string' ? chunk.value : decoder.write(chunk.value);
    let start = 0;
    let newline = rest.indexOf('\n', start);
    while (newline >= 0) {
      n++;
      yield [clean(rest.slice(start, newline)), n, true];
      start = newline + 1;
      newline = rest.indexOf('\n', start);
    }
    rest = rest.slice(start);
  }
  rest += decoder.end();
  if (rest !== '') {
    n++;
    yield [clean(rest), n, false];
  }
}

/** Splits one CSV line (RFC 4180 quotes; no newlines inside fields). */
export function csvFields(line: string, delimiter = ','): string[] {
  if (!line.includes('"')) return line.split(delimiter);
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (line.startsWith(delimiter, i)) {
      out.push(field);
      field = '';
      i += delimiter.length - 1;
    } else field += c;
  }
  out.push(field);
  return out;
}

/** A CSV header and the columns chosen from it. */
export interface CsvColumns {
  header: string[];
  label: number[];
  features: number[];
}

function csvColumns(
  fn: string,
  name: string,
  header: string[],
  options: FeatureTableOptions,
  withFeatures: boolean,
): CsvColumns {
  const find = (col: string) => {
    const i = header.indexOf(col);
    if (i < 0) {
      throw new ContrastiveError(
        `${fn}: ${name} line 1: expected a column ${JSON.stringify(col)} in the header, but got ${header.map((h) => JSON.stringify(h)).join(', ')}.`,
      );
    }
    return i;
  };
  const label = options.levelColumns
    ? options.levelColumns.map(find)
    : [find(options.labelColumn ?? 'label')];
  const features = !withFeatures
    ? []
    : options.featureColumns
      ? options.featureColumns.map(find)
      : header.map((_, i) => i).filter((i) => !label.includes(i));
  if (withFeatures && features.length === 0) {
    throw new ContrastiveError(
      `${fn}: ${name} line 1: expected at least one feature column besides the label, but got only ${header.map((h) => JSON.stringify(h)).join(', ')}.`,
    );
  }
  return { header, label, features };
}

/** The label path of one CSV record: a path column split by the separator, or one column per level. */
function csvPath(
  fn: string,
  name: string,
  n: number,
  fields: string[],
  columns: CsvColumns,
  options: FeatureTableOptions,
): string[] {
  const separator = options.separator ?? '/';
  if (!options.levelColumns) {
    const i = columns.label[0];
    return splitPath(
      fields[i],
      separator,
      () => `${fn}: ${name} line ${n}, column ${JSON.stringify(columns.header[i])}`,
    );
  }
  return columns.label.map((i) => {
    const value = fields[i].trim();
    if (value === '') {
      throw new ContrastiveError(
        `${fn}: ${name} line ${n}, column ${JSON.stringify(columns.header[i])}: expected a label, but got "".`,
      );
    }
    return value;
  });
}

/**
 * Streams a CSV file, calling `row` for each record after the header. A last line without a
 * newline that has fewer fields than the header is an error saying the file looks cut off; one
 * with every field is kept, and `row` learns that it was unterminated.
 */
export async function eachCsvRecord(
  fn: string,
  path: string,
  options: Pick<FeatureTableOptions, 'delimiter'>,
  header: (fields: string[]) => CsvColumns,
  row: (fields: string[], n: number, columns: CsvColumns, terminated: boolean) => void,
): Promise<void> {
  const name = basename(path);
  const delimiter = options.delimiter ?? ',';
  let columns: CsvColumns | null = null;
  for await (const [line, n, terminated] of lines(path, fn)) {
    if (line.trim() === '') continue;
    const fields = csvFields(line, delimiter);
    if (!columns) {
      columns = header(fields.map((f) => f.trim()));
      continue;
    }
    if (!terminated && fields.length < columns.header.length) {
      throw new ContrastiveError(
        `${fn}: ${name} line ${n}: the file ends in the middle of this line (no newline, ${fields.length} of ${columns.header.length} fields): it looks cut off; fix or re-export the file.`,
      );
    }
    if (fields.length !== columns.header.length) {
      throw new ContrastiveError(
        `${fn}: ${name} line ${n}: expected ${columns.header.length} fields like the header, but got ${fields.length}.`,
      );
    }
    row(fields, n, columns, terminated);
  }
  if (!columns) throw new ContrastiveError(`${fn}: ${name} must start with a header line, but is empty.`);
}

/**
 * The warning for a file whose last line has no newline and whose label path appears on no other
 * line: the classic sign of a cut-off export (`Sneaker` read as a new class `Sneak`).
 */
export function unterminatedLabelWarning(
  name: string,
  line: number,
  paths: readonly (readonly string[])[],
  separator: string,
): string | null {
  const last = paths[paths.length - 1].join('\u0000');
  for (let i = 0; i < paths.length - 1; i++) if (paths[i].join('\u0000') === last) return null;
  return `${name} line ${line}: the file does not end with a newline and this last line's label ${JSON.stringify(paths[paths.length - 1].join(separator))} appears on no other line; if the file was cut off, that label is truncated.`;
}

async function readCsv(path: string, options: FeatureTableOptions): Promise<FeatureTable> {
  const fn = 'readCsv';
  const name = basename(path);
  const buffer = new RowBuffer();
  let unterminated = 0;
  const header = (fields: string[]) => csvColumns(fn, name, fields, options, true);
  await eachCsvRecord(fn, path, options, header, (fields, n, columns, terminated) => {
    if (!terminated) unterminated = n;
    const at = buffer.begin(columns.features.length, () => `${fn}: ${name} line ${n}`);
    const values = buffer.values;
    columns.features.forEach((i, k) => {
      const text = fields[i];
      const v = Number(text);
      if (!Number.isFinite(v) || text.trim() === '') {
        throw new ContrastiveError(
          `${fn}: ${name} line ${n}, column ${JSON.stringify(columns.header[i])}: expected a finite number, but got ${JSON.stringify(text)}.`,
        );
      }
      values[at + k] = v;
    });
    buffer.end(csvPath(fn, name, n, fields, columns, options));
  });
  const table = buffer.table();
  const warning =
    unterminated > 0
      ? unterminatedLabelWarning(name, unterminated, table.paths, options.separator ?? '/')
      : null;
  return warning ? { ...table, warnings: [warning] } : table;
}

async function readJsonl(path: string, options: FeatureTableOptions): Promise<FeatureTable> {
  const fn = 'readJsonl';
  const name = basename(path);
  const featuresKey = options.featuresKey ?? 'features';
  const labelKey = options.labelKey ?? options.labelColumn ?? 'label';
  const separator = options.separator ?? '/';
  const buffer = new RowBuffer();
  for await (const [line, n, terminated] of lines(path, fn)) {
    if (line.trim() === '') continue;
    const fields = jsonlObject(fn, name, line, n, terminated);
    const where = (field: string) => `${fn}: ${name} line ${n}, field ${JSON.stringify(field)}`;
    const vector = fields[featuresKey];
    if (!Array.isArray(vector)) {
      throw new ContrastiveError(
        `${where(featuresKey)}: expected an array of finite numbers, but got ${preview(vector)}.`,
      );
    }
    const at = buffer.begin(vector.length, () => `${fn}: ${name} line ${n}`);
    const values = buffer.values;
    vector.forEach((v, k) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ContrastiveError(
          `${where(featuresKey)}: expected an array of finite numbers, but element ${k} is ${preview(v)}.`,
        );
      }
      values[at + k] = v;
    });
    buffer.end(jsonlPath(fields, options.levelKeys, labelKey, separator, where));
  }
  return buffer.table();
}

function jsonlPath(
  fields: Record<string, unknown>,
  levelKeys: readonly string[] | undefined,
  labelKey: string,
  separator: string,
  where: (field: string) => string,
): string[] {
  if (levelKeys) {
    return levelKeys.map((k) => {
      const v = fields[k];
      if ((typeof v !== 'string' && typeof v !== 'number') || String(v).trim() === '') {
        throw new ContrastiveError(`${where(k)}: expected a label, but got ${preview(v)}.`);
      }
      return String(v).trim();
    });
  }
  const label = fields[labelKey];
  if (typeof label === 'string') return splitPath(label, separator, () => where(labelKey));
  if (
    Array.isArray(label) &&
    label.length > 0 &&
    label.every((s) => (typeof s === 'string' || typeof s === 'number') && String(s).trim() !== '')
  ) {
    return label.map((s) => String(s).trim());
  }
  throw new ContrastiveError(
    `${where(labelKey)}: expected a label path like "Clothes${separator}Tops" or an array of names, but got ${preview(label)}.`,
  );
}

/**
 * Reads the labels file of a `.npy` table: one label path per line, or (for `.csv`) a label
 * column / level columns with a header. Blank lines at the end are ignored.
 */
export async function readLabelPaths(path: string, options: FeatureTableOptions = {}): Promise<string[][]> {
  const name = basename(path);
  const paths: string[][] = [];
  if (tableExtension(path) === 'csv') {
    const header = (fields: string[]) => csvColumns('readLabels', name, fields, options, false);
    await eachCsvRecord('readLabels', path, options, header, (fields, n, columns) => {
      paths.push(csvPath('readLabels', name, n, fields, columns, options));
    });
    return paths;
  }
  let blank: number | null = null;
  for await (const [line, n] of lines(path, 'readLabels')) {
    if (line.trim() === '') {
      blank ??= n;
      continue;
    }
    if (blank !== null) {
      throw new ContrastiveError(
        `readLabels: ${name} line ${blank}: expected a label path like "Clothes${options.separator ?? '/'}Tops", but got "".`,
      );
    }
    paths.push(splitPath(line, options.separator ?? '/', () => `readLabels: ${name} line ${n}`));
  }
  return paths;
}

async function readNpyTable(path: string, options: FeatureTableOptions): Promise<FeatureTable> {
  const name = basename(path);
  if (!options.labelsPath) {
    throw new ContrastiveError(
      `readFeatureTable: labelsPath (the CLI's --labels) must name the labels of ${name} (a text file with one label path per line, or a CSV), but got none.`,
    );
  }
  const array = await readNpyMatrix(path);
  if (array.shape.length !== 2) {
    throw new ContrastiveError(
      `readNpy: ${name} must be a matrix [N, D], but has shape (${array.shape.join(', ')}).`,
    );
  }
  const [numRows, dim] = array.shape;
  const paths = await readLabelPaths(options.labelsPath, options);
  if (paths.length !== numRows) {
    throw new ContrastiveError(
      `readFeatureTable: ${name} has ${numRows} rows but ${basename(options.labelsPath)} has ${paths.length} labels; they must match.`,
    );
  }
  const data = array.data;
  for (let k = 0; k < data.length; k++) {
    if (!Number.isFinite(data[k])) {
      throw new ContrastiveError(
        `readNpy: ${name} row ${Math.floor(k / dim)}, column ${k % dim}: expected a finite number, but got ${data[k]}.`,
      );
    }
  }
  return { features: data, numRows, dim, paths };
}

/**
 * One JSONL line as an object; errors name the file and line, and say when the file ends in the
 * middle of the line (a cut-off download).
 */
export function jsonlObject(
  fn: string,
  name: string,
  line: string,
  n: number,
  terminated: boolean,
): Record<string, unknown> {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch (error) {
    throw new ContrastiveError(
      `${fn}: ${name} line ${n}: expected a JSON object, but the line is not valid JSON (${(error as Error).message})${terminated ? '' : '; the file ends in the middle of this line: it looks cut off'}.`,
    );
  }
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new ContrastiveError(
      `${fn}: ${name} line ${n}: expected a JSON object, but got ${preview(record)}.`,
    );
  }
  return record as Record<string, unknown>;
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
