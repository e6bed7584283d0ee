import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

/** A `.npy` array read as float32, row-major (C order), with its shape. */
export interface NpyMatrix {
  shape: number[];
  data: Float32Array;
  /** The dtype stored in the file (`'<f4'`, `'>f8'`, ...). */
  descr: string;
}

/** Bytes read per call when converting (float64 or big-endian) data; reused across the file. */
const CHUNK_BYTES = 1 << 20;

/** The header of a `.npy` file. */
interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the data. */
  dataOffset: number;
}

/**
 * Reads a NumPy `.npy` file of float32 or float64 (either byte order; version 1, 2 or 3 header)
 * into a Float32Array, in chunks: float32 little-endian data is read straight into the result,
 * anything else through one reused 1 MiB buffer, so a file is never held twice in memory.
 * Fortran-order 2-D arrays are transposed to row-major. Errors name the file and what is wrong.
 */
export async function readNpyMatrix(path: string): Promise<NpyMatrix> {
  const name = basename(path);
  const handle = await open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(`readNpy: cannot read ${path}: ${error.code ?? error.message}.`);
  });
  try {
    const { size: fileSize } = await handle.stat();
    const header = await readHeader(handle, name, fileSize);
    const { descr, shape } = header;
    const match = /^([<>|=]?)f([48])$/.exec(descr);
    if (!match) {
      throw new ContrastiveError(
        `readNpy: ${name} must hold float32 ('<f4') or float64 ('<f8') values, but holds dtype '${descr}'; convert it with arr.astype(np.float32).`,
      );
    }
    const bigEndian = match[1] === '>';
    const itemBytes = Number(match[2]);
    const size = shape.reduce((a, b) => a * b, 1);
    const available = fileSize - header.dataOffset;
    if (available < size * itemBytes) {
      throw new ContrastiveError(
        `readNpy: ${name} is truncated: shape (${shape.join(', ')}) of '${descr}' needs ${size * itemBytes} bytes of data, but only ${available} follow the header.`,
      );
    }
    let data = new Float32Array(size);
    if (itemBytes === 4 && !bigEndian) {
      const bytes = new Uint8Array(data.buffer);
      for (let done = 0; done < bytes.length; ) {
        const { bytesRead } = await handle.read(bytes, done, bytes.length - done, header.dataOffset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    } else {
      const chunk = new Uint8Array(Math.min(CHUNK_BYTES, Math.max(size * itemBytes, itemBytes)));
      const view = new DataView(chunk.buffer);
      const perChunk = Math.floor(chunk.length / itemBytes);
      for (let first = 0; first < size; first += perChunk) {
        const count = Math.min(perChunk, size - first);
        await handle.read(chunk, 0, count * itemBytes, header.dataOffset + first * itemBytes);
        for (let k = 0; k < count; k++) {
          data[first + k] =
            itemBytes === 4 ? view.getFloat32(4 * k, !bigEndian) : view.getFloat64(8 * k, !bigEndian);
        }
      }
    }
    if (header.fortranOrder && shape.length > 1) {
      if (shape.length !== 2) {
        throw new ContrastiveError(
          `readNpy: ${name} is a Fortran-order array of rank ${shape.length}; only rank 2 is transposed, save it with np.ascontiguousarray.`,
        );
      }
      const [rows, cols] = shape;
      const c = new Float32Array(size);
      for (let j = 0; j < cols; j++) for (let i = 0; i < rows; i++) c[i * cols + j] = data[j * rows + i];
      data = c;
    }
    return { shape, data, descr };
  } finally {
    await handle.close();
  }
}

async function readHeader(
  handle: Awaited<ReturnType<typeof open>>,
  name: string,
  fileSize: number,
): Promise<NpyHeader> {
  const bad = (what: string) => new ContrastiveError(`readNpy: ${name} has a bad .npy header: ${what}.`);
  const lead = new Uint8Array(12);
  await handle.read(lead, 0, 12, 0);
  const magic = String.fromCharCode(...lead.subarray(1, 6));
  if (fileSize < 10 || lead[0] !== 0x93 || magic !== 'NUMPY') {
    throw bad(
      `expected the magic string "\\x93NUMPY", but got ${JSON.stringify(String.fromCharCode(...lead.subarray(0, 6)))}`,
    );
  }
  const major = lead[6];
  if (major < 1 || major > 3) throw bad(`expected format version 1, 2 or 3, but got ${major}.${lead[7]}`);
  const view = new DataView(lead.buffer);
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + length > fileSize) {
    throw bad(
      `it claims ${length} bytes, but the file has only ${Math.max(0, fileSize - start)} after the preamble`,
    );
  }
  const raw = new Uint8Array(length);
  await handle.read(raw, 0, length, start);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(raw).trim();
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(text)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (!text.startsWith('{') || !descr || !fortran || shapeText === undefined) {
    throw bad(
      `expected a dict with 'descr', 'fortran_order' and 'shape', but got ${JSON.stringify(text.slice(0, 100))}`,
    );
  }
  const parts = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const shape = parts.map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw bad(`expected a shape of non-negative integers, but got (${shapeText})`);
  }
  return { descr, fortranOrder: fortran === 'True', shape, dataOffset: start + length };
}

/** Reads a `.npy` file as float32 (see {@link readNpyMatrix}). */
export const readNpy = readNpyMatrix;

/** A float32 array with a shape, as stored in a `.npy` file. */
export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/** Encodes a float32 C-order array in NumPy's `.npy` format (version 1.0). */
export function encodeNpy(array: NpyArray): Uint8Array {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (!array.shape.every((d) => Number.isInteger(d) && d >= 0) || count !== array.data.length) {
    throw new ContrastiveError(
      `writeNpy: shape [${array.shape.join(', ')}] holds ${count} values but the data has ${array.data.length}.`,
    );
  }
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n
  const unpadded = 10 + header.length + 1;
  header += `${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  const bytes = new Uint8Array(10 + header.length + array.data.length * 4);
  bytes.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0], 0);
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(new TextEncoder().encode(header), 10);
  bytes.set(
    new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength),
    10 + header.length,
  );
  return bytes;
}

/** Writes a `.npy` file atomically. */
export async function writeNpy(path: string, array: NpyArray): Promise<void> {
  await writeFileAtomic(path, encodeNpy(array));
}

/** Reads a float32/float64 `.npy` file (the chunked reader of `src/data/npy.ts`). */
