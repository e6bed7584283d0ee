import { createReadStream } from 'node:fs';
import { basename, extname } from 'node:path';
import { createInterface } from 'node:readline';
import { ContrastiveError } from '../errors.js';
import { readNpy } from '../io/npy.js';

/** Vectors with a label path each: what users with existing embeddings bring. */
export interface FeatureTable {
  /** `[numRows, dim]` row-major. */
  features: Float32Array;
  numRows: number;
  dim: number;
  /** Label path of each row, coarsest first (`['Clothes', 'Tops', 'T-shirt']`). */
  paths: string[][];
}

/** Options of {@link readFeatureTable}. */
export interface FeatureTableOptions {
  /** `csv`, `jsonl` or `npy`; default from the file extension. */
  format?: 'csv' | 'jsonl' | 'npy';
  /** CSV: the label-path column (default `label`); JSONL: the label key (default `label`). */
  labelColumn?: string;
  /** CSV: one column per level instead of a path column, coarsest first. */
  levelColumns?: readonly string[];
  /** CSV: the feature columns (default: every other column). */
  featureColumns?: readonly string[];
  /** JSONL: the key holding the vector. Default `features`. */
  featuresKey?: string;
  /** Separator inside a label path. Default `/`. */
  separator?: string;
  /** `.npy`: a text file with one label path per line (required for npy). */
  labelsPath?: string;
}

/**
 * Reads a feature table — CSV (a label-path column and numeric feature columns), JSONL
 * (`{"features": [...], "label": "A/B/C"}` per line) or `.npy` `[N, D]` with a labels text file —
 * streaming line by line. Errors name the file, the line, the field and what was expected.
 */
export async function readFeatureTable(
  path: string,
  options: FeatureTableOptions = {},
): Promise<FeatureTable> {
  const ext = extname(path).slice(1).toLowerCase();
  const format =
    options.format ?? (ext === 'jsonl' || ext === 'ndjson' ? 'jsonl' : ext === 'npy' ? 'npy' : 'csv');
  const table =
    format === 'npy'
      ? await readNpyTable(path, options)
      : format === 'jsonl'
        ? await readJsonl(path, options)
        : await readCsv(path, options);
  if (table.numRows === 0) throw new ContrastiveError(`readFeatureTable: ${path} holds no rows.`);
  return table;
}

/** Accumulates rows into a growing buffer (no per-row arrays kept). */
class RowBuffer {
  private data = new Float32Array(1 << 16);
  numRows = 0;
  dim = -1;
  readonly paths: string[][] = [];

  push(values: ArrayLike<number>, path: string[], where: () => string): void {
    if (this.dim < 0) this.dim = values.length;
    if (values.length !== this.dim) {
      throw new ContrastiveError(
        `${where()}: expected ${this.dim} features like the first row, but got ${values.length}.`,
      );
    }
    if (this.dim === 0) throw new ContrastiveError(`${where()}: the row has no features.`);
    const need = (this.numRows + 1) * this.dim;
    if (need > this.data.length) {
      const grown = new Float32Array(Math.max(need, this.data.length * 2));
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(values, this.numRows * this.dim);
    this.paths.push(path);
    this.numRows++;
  }

  table(): FeatureTable {
    return {
      features: this.data.slice(0, this.numRows * Math.max(this.dim, 0)),
      numRows: this.numRows,
      dim: Math.max(this.dim, 0),
      paths: this.paths,
    };
  }
}

function splitPath(text: string, separator: string, where: () => string): string[] {
  const segments = text.split(separator).map((s) => s.trim());
  if (text.trim() === '' || segments.some((s) => s === '')) {
    throw new ContrastiveError(
      `${where()}: expected a label path like "Clothes${separator}Tops", but got ${JSON.stringify(text)}.`,
    );
  }
  return segments;
}

async function* lines(path: string): AsyncGenerator<[string, number]> {
  const stream = createReadStream(path, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (error: NodeJS.ErrnoException) =>
      reject(new ContrastiveError(`readFeatureTable: cannot read ${path}: ${error.code ?? error.message}.`)),
    );
  });
  await opened;
  let n = 0;
  for await (const line of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }))
    yield [line, ++n];
}

/** Splits one CSV line (RFC 4180 quotes; no newlines inside fields). */
function csvFields(line: string): string[] {
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
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}

async function readCsv(path: string, options: FeatureTableOptions): Promise<FeatureTable> {
  const name = basename(path);
  const separator = options.separator ?? '/';
  const buffer = new RowBuffer();
  let header: string[] | null = null;
  let labelIndex: number[] = [];
  let featureIndex: number[] = [];
  for await (const [line, n] of lines(path)) {
    if (line.trim() === '') continue;
    const fields = csvFields(line);
    if (!header) {
      header = fields.map((f) => f.trim());
      const find = (col: string) => {
        const i = header!.indexOf(col);
        if (i < 0)
          throw new ContrastiveError(
            `readCsv: ${name} line 1: no column ${JSON.stringify(col)} in the header (${header!.join(', ')}).`,
          );
        return i;
      };
      labelIndex = options.levelColumns
        ? options.levelColumns.map(find)
        : [find(options.labelColumn ?? 'label')];
      featureIndex = options.featureColumns
        ? options.featureColumns.map(find)
        : header.map((_, i) => i).filter((i) => !labelIndex.includes(i));
      continue;
    }
    if (fields.length !== header.length) {
      throw new ContrastiveError(
        `readCsv: ${name} line ${n}: expected ${header.length} fields like the header, but got ${fields.length}.`,
      );
    }
    const values = featureIndex.map((i) => {
      const v = Number(fields[i]);
      if (fields[i].trim() === '' || !Number.isFinite(v)) {
        throw new ContrastiveError(
          `readCsv: ${name} line ${n}, column ${JSON.stringify(header![i])}: expected a finite number, but got ${JSON.stringify(fields[i])}.`,
        );
      }
      return v;
    });
    const where = () => `readCsv: ${name} line ${n}, column ${JSON.stringify(header![labelIndex[0]])}`;
    const pathSegments = options.levelColumns
      ? labelIndex.map((i) => {
          if (fields[i].trim() === '')
            throw new ContrastiveError(
              `readCsv: ${name} line ${n}, column ${JSON.stringify(header![i])}: expected a label, but got "".`,
            );
          return fields[i].trim();
        })
      : splitPath(fields[labelIndex[0]], separator, where);
    buffer.push(values, pathSegments, () => `readCsv: ${name} line ${n}`);
  }
  if (!header) throw new ContrastiveError(`readCsv: ${name} is empty (no header line).`);
  return buffer.table();
}

async function readJsonl(path: string, options: FeatureTableOptions): Promise<FeatureTable> {
  const name = basename(path);
  const featuresKey = options.featuresKey ?? 'features';
  const labelKey = options.labelColumn ?? 'label';
  const separator = options.separator ?? '/';
  const buffer = new RowBuffer();
  for await (const [line, n] of lines(path)) {
    if (line.trim() === '') continue;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new ContrastiveError(
        `readJsonl: ${name} line ${n}: not valid JSON (${(error as Error).message}).`,
      );
    }
    const where = (field: string) => `readJsonl: ${name} line ${n}, field ${JSON.stringify(field)}`;
    const vector = record?.[featuresKey];
    if (!Array.isArray(vector) || vector.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
      throw new ContrastiveError(
        `${where(featuresKey)}: expected an array of finite numbers, but got ${JSON.stringify(vector)?.slice(0, 60)}.`,
      );
    }
    const label = record[labelKey];
    const segments = Array.isArray(label)
      ? label.map(String)
      : typeof label === 'string'
        ? splitPath(label, separator, () => where(labelKey))
        : (() => {
            throw new ContrastiveError(
              `${where(labelKey)}: expected a label path like "Clothes/Tops" or an array, but got ${JSON.stringify(label)}.`,
            );
          })();
    buffer.push(vector as number[], segments, () => `readJsonl: ${name} line ${n}`);
  }
  return buffer.table();
}

async function readNpyTable(path: string, options: FeatureTableOptions): Promise<FeatureTable> {
  const name = basename(path);
  if (!options.labelsPath)
    throw new ContrastiveError(
      `readFeatureTable: ${name} is .npy; pass labelsPath, a text file with one label path per line.`,
    );
  const array = await readNpy(path);
  if (array.shape.length !== 2)
    throw new ContrastiveError(`readNpy: ${name} must be [N, D], but has shape (${array.shape.join(', ')}).`);
  const [numRows, dim] = array.shape;
  const paths: string[][] = [];
  for await (const [line, n] of lines(options.labelsPath)) {
    if (line.trim() === '' && paths.length >= numRows) continue;
    paths.push(
      splitPath(
        line,
        options.separator ?? '/',
        () => `readFeatureTable: ${basename(options.labelsPath!)} line ${n}`,
      ),
    );
  }
  if (paths.length !== numRows) {
    throw new ContrastiveError(
      `readFeatureTable: ${name} has ${numRows} rows but ${basename(options.labelsPath)} has ${paths.length} labels; they must match.`,
    );
  }
  for (let k = 0; k < array.data.length; k++) {
    if (!Number.isFinite(array.data[k])) {
      throw new ContrastiveError(
        `readNpy: ${name} row ${Math.floor(k / dim)}, column ${k % dim}: expected a finite number, but got ${array.data[k]}.`,
      );
    }
  }
  return { features: array.data, numRows, dim, paths };
}
