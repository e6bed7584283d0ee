import { readFile } from 'node:fs/promises';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { sha256Hex } from '../io/checksum.js';

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

const MAGIC = 'TFJSCKPT2';
const OLD_MAGIC = 'TFJSCKPT1';
const CHECKSUM_LENGTH = 64;

/**
 * Writes a checkpoint as one file, atomically: a reader, or a run killed mid-write, sees the
 * previous checkpoint or the new one, never a torn file. Layout: magic, the SHA-256 (hex) of
 * everything after it, the header length (uint32 LE), the JSON header, padding to 4 bytes, the
 * float32 data. The checksum lets {@link readCheckpoint} refuse a damaged file instead of
 * training on damaged weights.
 */
export async function writeCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(checkpoint));
}

/** The bytes {@link writeCheckpoint} writes. */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  let offset = 0;
  const entries = checkpoint.tensors.map((t) => {
    const entry = { name: t.name, shape: t.shape, offset, length: t.data.length };
    offset += t.data.length;
    return entry;
  });
  const header = new TextEncoder().encode(JSON.stringify({ meta: checkpoint.meta, tensors: entries }));
  const lengthAt = MAGIC.length + CHECKSUM_LENGTH;
  const headerStart = lengthAt + 4;
  const dataStart = Math.ceil((headerStart + header.length) / 4) * 4;
  const bytes = new Uint8Array(dataStart + offset * 4);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(bytes.buffer).setUint32(lengthAt, header.length, true);
  bytes.set(header, headerStart);
  const floats = new Float32Array(bytes.buffer, dataStart, offset);
  for (const [i, t] of checkpoint.tensors.entries()) floats.set(t.data, entries[i].offset);
  bytes.set(new TextEncoder().encode(sha256Hex(bytes.subarray(lengthAt))), MAGIC.length);
  return bytes;
}

/**
 * Reads a checkpoint written by {@link writeCheckpoint}, verifying its checksum. A missing,
 * truncated or damaged file is a `ContrastiveError` naming it.
 */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new ContrastiveError(`readCheckpoint: cannot read ${path}: ${error.code ?? error.message}.`);
  });
  return decodeCheckpoint(bytes, path);
}

/** Parses checkpoint bytes; `path` names the file in errors. */
export function decodeCheckpoint(bytes: Uint8Array, path: string): Checkpoint {
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  const damaged = (what: string) =>
    new ContrastiveError(`readCheckpoint: ${path} is damaged (${what}); it cannot be trusted.`);
  let headerStart: number;
  let headerLength: number;
  if (magic === MAGIC) {
    const lengthAt = MAGIC.length + CHECKSUM_LENGTH;
    if (bytes.length < lengthAt + 4) throw damaged('truncated');
    const stored = new TextDecoder().decode(bytes.subarray(MAGIC.length, lengthAt));
    if (stored !== sha256Hex(bytes.subarray(lengthAt))) throw damaged('checksum mismatch');
    headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(lengthAt, true);
    headerStart = lengthAt + 4;
  } else if (magic === OLD_MAGIC) {
    // format 1 (no checksum), as earlier versions wrote it
    headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(OLD_MAGIC.length, true);
    headerStart = OLD_MAGIC.length + 4;
  } else {
    throw new ContrastiveError(`readCheckpoint: ${path} is not a tfjs-contrastive checkpoint.`);
  }
  let header: {
    meta: Record<string, unknown>;
    tensors: { name: string; shape: number[]; offset: number; length: number }[];
  };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength)));
  } catch {
    throw damaged('its header is not valid JSON');
  }
  if (!header || typeof header.meta !== 'object' || !Array.isArray(header.tensors))
    throw damaged('bad header');
  const dataStart = Math.ceil((headerStart + headerLength) / 4) * 4;
  const total = header.tensors.reduce((s, t) => s + t.length, 0);
  if (bytes.length < dataStart + total * 4) throw damaged('truncated');
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
