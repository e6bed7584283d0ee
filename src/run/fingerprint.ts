import { createHash } from 'node:crypto';
import { type DataSplit, isCachedSplit, type RunData } from '../data/runData.js';
import { ContrastiveError } from '../errors.js';
import type { LabelTree } from '../hierarchy/labelTree.js';
import type { DataFingerprint, SplitFingerprint } from './records.js';

/**
 * Sizes, per-class counts and checksums of both splits: what `data.json` holds. A split in the
 * image cache is hashed row by row as the same float32 values it would have in memory, so a
 * streamed and an in-memory run of the same data have the same fingerprint (and a moved folder
 * still matches); only a few thousand rows are in memory at a time.
 */
export async function dataFingerprint(data: RunData): Promise<DataFingerprint> {
  const rowSize = data.inputShape.reduce((a, b) => a * b, 1);
  return {
    source: data.source,
    train: await splitFingerprint(data.train, rowSize, data.tree),
    test: await splitFingerprint(data.test, rowSize, data.tree),
  };
}

/** Rows hashed per read of a cached split (about 48 MiB of floats at 64 × 64 × 3). */
const HASH_CHUNK_ROWS = 1024;

async function splitFingerprint(
  split: DataSplit,
  rowSize: number,
  tree: LabelTree,
): Promise<SplitFingerprint> {
  const depth = tree.depth;
  const classCounts = new Array<number>(tree.levelSizes[depth - 1]).fill(0);
  for (let i = 0; i < split.size; i++) {
    const id = split.labels[i * depth + depth - 1];
    if (id >= 0) classCounts[id]++;
  }
  const hash = createHash('sha256');
  if (isCachedSplit(split)) {
    const rows = Math.min(HASH_CHUNK_ROWS, split.size);
    const floats = new Float32Array(rows * rowSize);
    const bytes = new Uint8Array(rows * rowSize);
    const indices = new Int32Array(rows);
    for (let start = 0; start < split.size; start += rows) {
      const n = Math.min(rows, split.size - start);
      for (let k = 0; k < n; k++) indices[k] = start + k;
      await split.cache.readRows(indices.subarray(0, n), floats, 0, bytes);
      hash.update(new Uint8Array(floats.buffer, 0, n * rowSize * 4));
    }
  } else {
    hash.update(new Uint8Array(split.inputs.buffer, split.inputs.byteOffset, split.inputs.byteLength));
  }
  hash.update(new Uint8Array(split.labels.buffer, split.labels.byteOffset, split.labels.byteLength));
  return { rows: split.size, sha256: hash.digest('hex'), classCounts };
}

/**
 * Throws when `data` is not the data the run was trained on: another label tree (a renamed or
 * added class), or splits of other sizes or contents. `splits` says which splits to compare
 * (`eval` with another `--train-limit` compares only the test split).
 */
export async function checkSameData(
  command: string,
  runDir: string,
  saved: { tree: LabelTree | null; fingerprint: DataFingerprint | null },
  data: RunData,
  splits: readonly ('train' | 'test')[] = ['train', 'test'],
): Promise<void> {
  if (saved.tree && JSON.stringify(saved.tree.toJSON()) !== JSON.stringify(data.tree.toJSON())) {
    const before = new Set(saved.tree.classes(saved.tree.depth - 1));
    const now = data.tree.classes(data.tree.depth - 1);
    const added = now.filter((c) => !before.has(c));
    const gone = [...before].filter((c) => !now.includes(c));
    const diff = [
      added.length ? `new classes ${added.slice(0, 5).join(', ')}` : '',
      gone.length ? `missing classes ${gone.slice(0, 5).join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    throw new ContrastiveError(
      `${command}: the data's label tree differs from the one ${runDir} was trained with${diff ? ` (${diff})` : ''}; evaluating on it would be silently wrong. Point --data at the run's data.`,
    );
  }
  if (!saved.fingerprint) return;
  const now = await dataFingerprint(data);
  for (const split of splits) {
    const a = saved.fingerprint[split];
    const b = now[split];
    if (a.rows !== b.rows || a.sha256 !== b.sha256) {
      throw new ContrastiveError(
        `${command}: the ${split} split is not the one ${runDir} was trained with (${a.rows} rows then, ${b.rows} now${a.rows === b.rows ? ', different contents' : ''}); the data changed or moved. Point --data at the run's data.`,
      );
    }
  }
}
