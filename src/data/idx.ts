import { readFile } from 'node:fs/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

/** An IDX array (the MNIST file format): unsigned bytes with a shape. */
export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

/** Parses IDX bytes (gzipped or not). Only the unsigned-byte type (0x08), which MNIST-style sets use. */
export function parseIdx(bytes: Uint8Array, name = 'IDX data'): IdxArray {
  const raw = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipOrThrow(bytes, name) : bytes;
  if (raw.length < 4 || raw[0] !== 0 || raw[1] !== 0) {
    throw new ContrastiveError(
      `readIdx: ${name} is not an IDX file: the magic number must start with two zero bytes, but got ${hex(raw.subarray(0, 4))}.`,
    );
  }
  if (raw[2] !== 0x08) {
    throw new ContrastiveError(
      `readIdx: ${name} holds data type 0x${raw[2].toString(16)}; only unsigned bytes (0x08) are supported.`,
    );
  }
  const rank = raw[3];
  const headerBytes = 4 + 4 * rank;
  if (rank === 0 || raw.length < headerBytes) {
    throw new ContrastiveError(
      `readIdx: ${name} is truncated inside its header (rank ${rank}, ${raw.length} bytes).`,
    );
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = shape.reduce((a, b) => a * b, 1);
  if (raw.length - headerBytes < size) {
    throw new ContrastiveError(
      `readIdx: ${name} is truncated: its header promises shape [${shape.join(',')}] = ${size} bytes of data, but only ${raw.length - headerBytes} follow.`,
    );
  }
  return { shape, data: raw.subarray(headerBytes, headerBytes + size) };
}

/** Reads an IDX file (`.gz` or not) from disk. */
export async function readIdx(path: string): Promise<IdxArray> {
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(`readIdx: cannot read ${path}: ${error.code ?? error.message}.`);
  });
  return parseIdx(bytes, path);
}

/** Writes an unsigned-byte IDX file (gzipped when the name ends in `.gz`), atomically. */
export async function writeIdx(path: string, array: IdxArray): Promise<void> {
  const header = new Uint8Array(4 + 4 * array.shape.length);
  header[2] = 0x08;
  header[3] = array.shape.length;
  const view = new DataView(header.buffer);
  array.shape.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  const bytes = new Uint8Array(header.length + array.data.length);
  bytes.set(header);
  bytes.set(array.data, header.length);
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
