import { createHash } from 'node:crypto';

/** SHA-256 of the concatenated bytes, as lowercase hex: the checksum of checkpoints, models and indexes. */
export function sha256Hex(...parts: (Uint8Array | string)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}
