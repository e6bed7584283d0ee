import { readFile } from 'node:fs/promises';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';

/** Named float32 arrays with shapes: weights, optimiser slots, the queue. */
export interface TensorRecord {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Everything a run needs to continue exactly where it stopped. */
export interface Checkpoint {
  /** JSON-serialisable state: step, epoch, RNG states, config, sampler position ... */
  meta: Record<string, unknown>;
  tensors: TensorRecord[];
}

const MAGIC = 'TFJSCKPT1';

/**
 * Writes a checkpoint as one file (a JSON header, then the float32 data), atomically: a reader,
 * or a run killed mid-write, sees the previous checkpoint or the new one, never a torn file.
 */
export async function writeCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  let offset = 0;
  const entries = checkpoint.tensors.map((t) => {
    const entry = { name: t.name, shape: t.shape, offset, length: t.data.length };
    offset += t.data.length;
    return entry;
  });
  const header = new TextEncoder().encode(JSON.stringify({ meta: checkpoint.meta, tensors: entries }));
  // layout: magic, header length (uint32 LE), header, padding to 4 bytes, float32 data
  const headerStart = MAGIC.length + 4;
  const dataStart = Math.ceil((headerStart + header.length) / 4) * 4;
  const bytes = new Uint8Array(dataStart + offset * 4);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(bytes.buffer).setUint32(MAGIC.length, header.length, true);
  bytes.set(header, headerStart);
  const floats = new Float32Array(bytes.buffer, dataStart, offset);
  for (const [i, t] of checkpoint.tensors.entries()) floats.set(t.data, entries[i].offset);
  await writeFileAtomic(path, bytes);
}

/** Reads a checkpoint written by {@link writeCheckpoint}. */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(`readCheckpoint: cannot read ${path}: ${error.code ?? error.message}.`);
  });
  if (new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC) {
    throw new ContrastiveError(`readCheckpoint: ${path} is not a tfjs-contrastive checkpoint.`);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(MAGIC.length, true);
  const headerStart = MAGIC.length + 4;
  const header = JSON.parse(
    new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength)),
  ) as {
    meta: Record<string, unknown>;
    tensors: { name: string; shape: number[]; offset: number; length: number }[];
  };
  const dataStart = Math.ceil((headerStart + headerLength) / 4) * 4;
  const total = header.tensors.reduce((s, t) => s + t.length, 0);
  if (bytes.length < dataStart + total * 4)
    throw new ContrastiveError(`readCheckpoint: ${path} is truncated.`);
  const floats = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset + dataStart, bytes.byteOffset + dataStart + total * 4),
  );
  return {
    meta: header.meta,
    tensors: header.tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      data: floats.subarray(t.offset, t.offset + t.length),
    })),
  };
}
