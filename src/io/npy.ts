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

/** Reads a float32/float64 `.npy` file (the chunked reader of `src/data/npy.ts`). */
export { readNpyMatrix as readNpy } from '../data/npy.js';
