import { createHash } from 'node:crypto';
import type { TrainingData, TrainingSplit } from '../data/dataset.js';
import { ContrastiveError } from '../errors.js';
import type { LabelTree } from '../hierarchy/labelTree.js';
import type { DataFingerprint, SplitFingerprint } from './records.js';

/** Sizes, per-class counts and checksums of both splits: what `data.json` holds. */
export function dataFingerprint(data: TrainingData): DataFingerprint {
  return {
    source: data.source,
    train: splitFingerprint(data.train, data.tree),
    test: splitFingerprint(data.test, data.tree),
  };
}

function splitFingerprint(split: TrainingSplit, tree: LabelTree): SplitFingerprint {
  const depth = tree.depth;
  const classCounts = new Array<number>(tree.levelSizes[depth - 1]).fill(0);
  for (let i = 0; i < split.size; i++) {
    const id = split.labels[i * depth + depth - 1];
    if (id >= 0) classCounts[id]++;
  }
  const hash = createHash('sha256');
  hash.update(new Uint8Array(split.inputs.buffer, split.inputs.byteOffset, split.inputs.byteLength));
  hash.update(new Uint8Array(split.labels.buffer, split.labels.byteOffset, split.labels.byteLength));
  return { rows: split.size, sha256: hash.digest('hex'), classCounts };
}

/**
 * Throws when `data` is not the data the run was trained on: another label tree (a renamed or
 * added class), or splits of other sizes or contents. `splits` says which splits to compare
 * (`eval` with another `--train-limit` compares only the test split).
 */
export function checkSameData(
  command: string,
  runDir: string,
  saved: { tree: LabelTree | null; fingerprint: DataFingerprint | null },
  data: TrainingData,
  splits: readonly ('train' | 'test')[] = ['train', 'test'],
): void {
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
  const now = dataFingerprint(data);
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
