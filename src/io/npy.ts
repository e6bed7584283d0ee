import { readFile } from 'node:fs/promises';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';

/** A float32 array with a shape, as stored in a `.npy` file. */
export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

/** Encodes a float32 C-order array in NumPy's `.npy` format (version 1.0). */
export function encodeNpy(array: NpyArray): Uint8Array {
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

/** Reads a little-endian float32 or float64 C-order `.npy` file (float64 is converted to float32). */
export async function readNpy(path: string): Promise<NpyArray> {
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(`readNpy: cannot read ${path}: ${error.code ?? error.message}.`);
  });
  if (bytes[0] !== 0x93 || new TextDecoder().decode(bytes.subarray(1, 6)) !== 'NUMPY') {
    throw new ContrastiveError(`readNpy: ${path} is not a .npy file (bad magic string).`);
  }
  const major = bytes[6];
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw new ContrastiveError(`readNpy: ${path} has a malformed header: ${header.trim()}`);
  if (fortran === 'True')
    throw new ContrastiveError(`readNpy: ${path} is in Fortran order; save it with np.ascontiguousarray.`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const size = shape.reduce((a, b) => a * b, 1);
  const body = bytes.subarray(start + headerLength);
  if (descr === '<f4') {
    if (body.length < size * 4)
      throw new ContrastiveError(
        `readNpy: ${path} is truncated: shape (${shape}) needs ${size * 4} bytes, found ${body.length}.`,
      );
    return { shape, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + size * 4)) };
  }
  if (descr === '<f8') {
    if (body.length < size * 8)
      throw new ContrastiveError(
        `readNpy: ${path} is truncated: shape (${shape}) needs ${size * 8} bytes, found ${body.length}.`,
      );
    return {
      shape,
      data: Float32Array.from(
        new Float64Array(body.buffer.slice(body.byteOffset, body.byteOffset + size * 8)),
      ),
    };
  }
  throw new ContrastiveError(
    `readNpy: ${path} holds dtype ${descr}; expected little-endian float32 ('<f4') or float64 ('<f8').`,
  );
}
