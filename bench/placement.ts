/**
 * Placement of unseen classes and the precision guarantee, on a trained run (e.g. one trained with
 * `--holdout-classes Shirt,Sneaker`):
 * - the index is the training split without the held-out classes; calibration is `contrastive
 *   predict`'s default (5,000 labelled index items, each left out of its own neighbours);
 * - unseen: for the test items of each held-out class, how often `predictPath` stops at the right
 *   parent, names a wrong class, stops higher up, and their median confidence at the class level;
 * - fresh halves: 20 draws, each a fresh calibration sample and a random half of the test set
 *   (seen classes only, then every class): the precision achieved per level at the target, and in
 *   how many draws it falls below the target.
 *
 *   node dist/bench/placement.js --run runs/holdout [--holdout Shirt,Sneaker] [--draws 20] [--target 0.95]
 *
 * Embeddings are cached beside the run (`<run>/bench-embeddings-{train,test}.json`).
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { useBackend } from '../src/engine/backend.js';
import { Rng } from '../src/random.js';
import { calibrate, EmbeddingIndex, embedInputs, openRunEncoder, predictPath } from '../src/search/index.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const runDir = arg('run', '');
if (!runDir) throw new Error('give --run <run folder>');
const holdout = arg('holdout', 'Shirt,Sneaker').split(',').filter(Boolean);
const draws = Number(arg('draws', '20'));
const target = Number(arg('target', '0.95'));
const extra = arg('options', '{}');

interface Split {
  embeddings: Float32Array;
  dim: number;
  labels: string[][];
}

async function embedded(split: 'train' | 'test'): Promise<Split> {
  const cache = join(runDir, `bench-embeddings-${split}.json`);
  if (existsSync(cache)) {
    const json = JSON.parse(await readFile(cache, 'utf8'));
    return { embeddings: Float32Array.from(json.embeddings), dim: json.dim, labels: json.labels };
  }
  const out = await embedInputs(runDir, { kind: 'fashion-mnist', split });
  const labels = out.items.map((it) => (typeof it.label === 'string' ? it.label.split('/') : [...it.label!]));
  await writeFile(cache, JSON.stringify({ dim: out.dim, labels, embeddings: Array.from(out.embeddings) }));
  return { embeddings: out.embeddings, dim: out.dim, labels };
}

const rows = (s: Split, keep: number[]) => {
  const out = new Float32Array(keep.length * s.dim);
  keep.forEach((r, i) => {
    out.set(s.embeddings.subarray(r * s.dim, (r + 1) * s.dim), i * s.dim);
  });
  return out;
};

await useBackend('auto');
const encoder = await openRunEncoder(runDir);
const tree = encoder.tree;
encoder.dispose();
const [train, test] = [await embedded('train'), await embedded('test')];
const isUnseen = (path: string[]) => holdout.includes(path[path.length - 1]);
const seenTrain = train.labels.map((_, i) => i).filter((i) => !isUnseen(train.labels[i]));
const index = EmbeddingIndex.create({ tree, dim: train.dim });
index.add(
  seenTrain.map((i) => ({ id: i, label: train.labels[i] })),
  rows(train, seenTrain),
);
const labelled = index.items();
const options = JSON.parse(extra);
const calibrationOf = (seed: number, methods?: ('knn' | 'prototype')[]) => {
  const order = new Rng(seed).permutation(labelled.length);
  const sample = Array.from(order.subarray(0, Math.min(5000, labelled.length)), (i) => labelled[i]);
  return calibrate(
    index,
    {
      embeddings: sample.map((it) => index.embedding(it.id)),
      labels: sample.map((it) => it.label!),
      selfIds: sample.map((it) => it.id),
    },
    { targetPrecision: target, methods, ...options },
  );
};
const started = Date.now();
const calibration = calibrationOf(0);
console.log(
  `index: ${index.size} training items without ${holdout.join(', ')}; calibrated in ${((Date.now() - started) / 1000).toFixed(1)} s; method ${calibration.method}; thresholds ${calibration.levels.map((l) => l.threshold.toFixed(3)).join(' / ')}`,
);
if ((calibration as { guarantee?: string }).guarantee)
  console.log(`guarantee: ${(calibration as { guarantee?: string }).guarantee}`);

// unseen classes: where do their test items land?
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};
const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
for (const cls of holdout) {
  const items = test.labels.map((_, i) => i).filter((i) => test.labels[i][test.labels[i].length - 1] === cls);
  if (items.length === 0) continue;
  const predictions = predictPath(index, rows(test, items), { calibration });
  let rightParent = 0;
  let wrongClass = 0;
  let higher = 0;
  let wrongParent = 0;
  predictions.forEach((p, j) => {
    const truth = test.labels[items[j]];
    if (p.depth === tree.depth) wrongClass++;
    else if (p.depth === tree.depth - 1 && p.path.every((n, l) => n === truth[l])) rightParent++;
    else if (p.path.every((n, l) => n === truth[l])) higher++;
    else wrongParent++;
  });
  const n = items.length;
  console.log(
    `unseen ${cls} (${n}): right parent ${pct(rightParent / n)}, wrong class ${pct(wrongClass / n)}, a right coarser node ${pct(higher / n)}, a wrong node above the class ${pct(wrongParent / n)}; median class-level confidence ${median(predictions.map((p) => p.levels[tree.depth - 1].confidence)).toFixed(2)}`,
  );
}
// seen classes of the test set: coverage / precision per level
const report = (name: string, keep: number[], cal = calibration) => {
  const predictions = predictPath(index, rows(test, keep), { calibration: cal });
  return tree.levelNames.map((_, l) => {
    let answered = 0;
    let right = 0;
    predictions.forEach((p, j) => {
      if (p.depth <= l) return;
      answered++;
      const truth = test.labels[keep[j]];
      if (p.path.slice(0, l + 1).every((x, i) => x === truth[i])) right++;
    });
    return {
      name,
      level: l,
      coverage: answered / keep.length,
      precision: answered ? right / answered : Number.NaN,
    };
  });
};
const seenTest = test.labels.map((_, i) => i).filter((i) => !isUnseen(test.labels[i]));
for (const r of report('seen test items', seenTest))
  console.log(
    `seen test items, ${tree.levelNames[r.level]}: answered ${pct(r.coverage)}, precision ${pct(r.precision)}`,
  );

// fresh halves: per draw a fresh calibration sample (kNN only, the method chosen above) and a
// random half of the test set, seen classes only and every class
if (draws > 0) {
  const pools = [
    ['seen classes', seenTest],
    ['every class (unseen ones included)', test.labels.map((_, i) => i)],
  ] as const;
  const precision = pools.map(() => tree.levelNames.map(() => [] as number[]));
  const coverage = pools.map(() => tree.levelNames.map(() => [] as number[]));
  for (let d = 0; d < draws; d++) {
    const cal = calibrationOf(1000 + d, ['knn']);
    pools.forEach(([name, pool], i) => {
      const order = new Rng(2000 + d).permutation(pool.length);
      const half = Array.from(order.subarray(0, Math.floor(pool.length / 2)), (j) => pool[j]);
      for (const r of report(name, half, cal)) {
        precision[i][r.level].push(r.precision);
        coverage[i][r.level].push(r.coverage);
      }
    });
  }
  pools.forEach(([name], i) => {
    tree.levelNames.forEach((level, l) => {
      const p = precision[i][l].filter((v) => !Number.isNaN(v));
      const missed = p.filter((v) => v < target).length;
      console.log(
        `fresh halves, ${name}, ${level}: precision min ${pct(Math.min(...p))}, median ${pct(median(p))}; below ${target} in ${missed} of ${p.length} draws; coverage median ${pct(median(coverage[i][l]))}`,
      );
    });
  });
}
index.dispose();
