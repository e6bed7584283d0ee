import { ContrastiveError } from '../errors.js';
import { Rng } from '../random.js';
import type { RunData } from './runData.js';

/** What {@link flipLabels} did. */
export interface LabelFlips {
  /** The label rows after flipping (`[N, L]`, a copy; the input is not changed). */
  labels: Int32Array;
  /** The rows flipped, ascending. */
  rows: Int32Array;
}

/** Offset mixed into the run's seed so the flips do not share a stream with the run's other draws. */
const NOISE_STREAM = 0x6e6f6973;

/**
 * `--label-noise p`: flips exactly `round(p · n)` of the `n` fully labelled rows of `labels`
 * (`[N, depth]`, coarsest first; rows whose finest column is unknown (-1) are never flipped and
 * are not counted in n), chosen uniformly by `seed`. Each flipped row gets a different leaf class
 * drawn uniformly among the **other** leaf classes present in `labels` — across branches, not
 * only among its siblings — and its whole label path changes with it (the path of that leaf as
 * the other rows hold it), so the rows stay consistent with the tree. Same labels and seed, same
 * flips.
 */
export function flipLabels(labels: Int32Array, depth: number, fraction: number, seed: number): LabelFlips {
  if (!(fraction >= 0 && fraction < 1)) {
    throw new ContrastiveError(`train: --label-noise must be in [0, 1), but got ${fraction}.`);
  }
  const out = labels.slice();
  const size = depth > 0 ? labels.length / depth : 0;
  const eligible: number[] = [];
  const leafPaths = new Map<number, Int32Array>();
  for (let i = 0; i < size; i++) {
    const leaf = labels[i * depth + depth - 1];
    if (leaf < 0) continue;
    eligible.push(i);
    if (!leafPaths.has(leaf)) leafPaths.set(leaf, labels.subarray(i * depth, (i + 1) * depth));
  }
  const count = Math.round(fraction * eligible.length);
  if (count === 0) return { labels: out, rows: new Int32Array(0) };
  const leaves = [...leafPaths.keys()].sort((a, b) => a - b);
  if (leaves.length < 2) {
    throw new ContrastiveError(
      `train: --label-noise ${fraction} needs at least 2 leaf classes in the training split to flip a label to another, but it has ${leaves.length}.`,
    );
  }
  const rng = new Rng((seed + NOISE_STREAM) >>> 0);
  // a partial Fisher-Yates shuffle: the first `count` entries are a uniform sample of the rows
  for (let k = 0; k < count; k++) {
    const j = k + rng.int(eligible.length - k);
    [eligible[k], eligible[j]] = [eligible[j], eligible[k]];
  }
  const rows = Int32Array.from(eligible.slice(0, count)).sort();
  for (const row of rows) {
    const own = leaves.indexOf(labels[row * depth + depth - 1]);
    let pick = rng.int(leaves.length - 1);
    if (pick >= own) pick++;
    out.set(leafPaths.get(leaves[pick]) as Int32Array, row * depth);
  }
  return { labels: out, rows };
}

/**
 * The run's data with `fraction` of its **training** labels flipped by {@link flipLabels}; the
 * test (or validation) split, the inputs and everything else are the same objects. `fraction`
 * 0 returns `data` itself.
 */
export function withLabelNoise(data: RunData, fraction: number, seed: number): RunData {
  if (fraction === 0) return data;
  const { labels } = flipLabels(data.train.labels, data.tree.depth, fraction, seed);
  return { ...data, train: { ...data.train, labels } } as RunData;
}
