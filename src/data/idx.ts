import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip, gunzipSync, gzipSync } from 'node:zlib';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

/** The element types of the IDX format, by name. */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** The typed array of each IDX element type. */
export interface IdxData {
  uint8: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
}

/**
 * An IDX array (the MNIST file format): a typed array with a shape, row-major. `dtype` defaults to
 * `'uint8'` (what MNIST-style image and label files hold) when writing.
 */
export interface IdxArray<D extends IdxDtype = IdxDtype> {
  shape: number[];
  data: IdxData[D];
  dtype?: D;
}

const CODES: Record<number, { dtype: IdxDtype; bytes: number }> = {
  8: { dtype: 'uint8', bytes: 1 },
  9: { dtype: 'int8', bytes: 1 },
  11: { dtype: 'int16', bytes: 2 },
  12: { dtype: 'int32', bytes: 4 },
  13: { dtype: 'float32', bytes: 4 },
  14: { dtype: 'float64', bytes: 8 },
};

/**
 * Parses IDX bytes; gzipped input (magic 0x1f8b) is inflated first. Multi-byte elements are
 * big-endian in the file and come back in native typed arrays. `name` is used in error messages.
 */
export function parseIdx(bytes: Uint8Array, name = 'IDX data'): IdxArray & { dtype: IdxDtype } {
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipOrThrow(bytes, name) : bytes;
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) {
    throw new ContrastiveError(
      `readIdx: ${name} is not an IDX file: the magic number must start with two zero bytes, but got ${hex(raw.subarray(0, 4))}.`,
    );
  }
  const type = CODES[raw[2]];
  if (!type) {
    throw new ContrastiveError(
      `readIdx: ${name} holds data type 0x${raw[2].toString(16)}; expected one of 0x08 (uint8), 0x09 (int8), 0x0b (int16), 0x0c (int32), 0x0d (float32), 0x0e (float64).`,
    );
  }
  const rank = raw[3];
  const headerBytes = 4 + 4 * rank;
  if (rank === 0 || raw.length < headerBytes) {
    throw new ContrastiveError(
      `readIdx: ${name} is truncated inside its header (rank ${rank} needs ${headerBytes} bytes, but the file has ${raw.length}).`,
    );
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = shape.reduce((a, b) => a * b, 1);
  const available = raw.length - headerBytes;
  if (available < size * type.bytes) {
    throw new ContrastiveError(
      `readIdx: ${name} is truncated: its header promises shape [${shape.join(',')}] = ${size * type.bytes} bytes of data, but only ${available} follow.`,
    );
  }
  const body = raw.subarray(headerBytes, headerBytes + size * type.bytes);
  return { shape, dtype: type.dtype, data: decode(type.dtype, body, size) };
}

function decode(dtype: IdxDtype, body: Uint8Array, size: number): IdxData[IdxDtype] {
  if (dtype === 'uint8') return body;
  if (dtype === 'int8') return new Int8Array(body.buffer, body.byteOffset, size);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  switch (dtype) {
    case 'int16':
      return Int16Array.from({ length: size }, (_, i) => view.getInt16(2 * i, false));
    case 'int32':
      return Int32Array.from({ length: size }, (_, i) => view.getInt32(4 * i, false));
    case 'float32':
      return Float32Array.from({ length: size }, (_, i) => view.getFloat32(4 * i, false));
    default:
      return Float64Array.from({ length: size }, (_, i) => view.getFloat64(8 * i, false));
  }
}

const gunzipAsync = promisify(gunzip);

/**
 * Reads an IDX file (gzipped or not, whatever its name) from disk. Inflating runs off the main
 * thread, so several files can be read at once (`Promise.all`).
 */
export async function readIdx(path: string): Promise<IdxArray & { dtype: IdxDtype }> {
  let bytes: Uint8Array = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(`readIdx: cannot read ${path}: ${error.code ?? error.message}.`);
  });
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    bytes = await gunzipAsync(bytes).catch((error: Error) => {
      throw new ContrastiveError(`readIdx: ${path} is a damaged gzip file (${error.message}).`);
    });
  }
  return parseIdx(bytes, path);
}

/** Encodes an IDX array (big-endian elements, as the format wants). */
export function encodeIdx(array: IdxArray): Uint8Array {
  const dtype = array.dtype ?? 'uint8';
  const entry = Object.entries(CODES).find(([, t]) => t.dtype === dtype);
  if (!entry) throw new ContrastiveError(`writeIdx: dtype must be an IDX type, but got ${String(dtype)}.`);
  const [code, type] = [Number(entry[0]), entry[1]];
  const size = array.shape.reduce((a, b) => a * b, 1);
  if (array.shape.length === 0 || array.shape.length > 255 || array.data.length !== size) {
    throw new ContrastiveError(
      `writeIdx: data must hold ${size} values for shape [${array.shape.join(',')}] (rank 1-255), but got ${array.data.length}.`,
    );
  }
  const header = 4 + 4 * array.shape.length;
  const bytes = new Uint8Array(header + size * type.bytes);
  const view = new DataView(bytes.buffer);
  bytes[2] = code;
  bytes[3] = array.shape.length;
  array.shape.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  const data = array.data;
  if (type.bytes === 1) {
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, size), header);
  } else {
    for (let i = 0; i < size; i++) {
      const at = header + i * type.bytes;
      if (dtype === 'int16') view.setInt16(at, data[i], false);
      else if (dtype === 'int32') view.setInt32(at, data[i], false);
      else if (dtype === 'float32') view.setFloat32(at, data[i], false);
      else view.setFloat64(at, data[i], false);
    }
  }
  return bytes;
}

/** Writes an IDX file (gzipped when the name ends in `.gz`), atomically. */
export async function writeIdx(path: string, array: IdxArray): Promise<void> {
  const bytes = encodeIdx(array);
  await writeFileAtomic(path, path.endsWith('.gz') ? gzipSync(bytes, { level: 9 }) : bytes);
}

function gunzipOrThrow(bytes: Uint8Array, name: string): Uint8Array {
  try {
    return gunzipSync(bytes);
  } catch (error) {
    throw new ContrastiveError(`readIdx: ${name} is a damaged gzip file (${(error as Error).message}).`);
  }
}

const hex = (b: Uint8Array) => `0x${Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')}`;
