/**
 * Search benchmarks (issue 13) on every Fashion-MNIST image (70,000 with Debian's
 * dataset-fashion-mnist) embedded by a seeded random projection of the pixels (64-d):
 * - exact search vs HNSW (usearch): build time, memory, queries/s (one at a time and in batches),
 *   recall@10 of HNSW against exact;
 * - predictPath on the 60k training split as the index, the 10k test split halved into calibration
 *   and test: accuracy at full coverage for the kNN vote and the prototypes next to knnClassify, and
 *   coverage / precision at a 0.95 target after calibration; a held-out class (Shirt) answered at
 *   its parent vs seen classes.
 *
 * - the HTTP API under load (2,000 requests, 8 concurrent, loopback).
 * - with `--trained` (a few minutes): a HiMulConE run trained on the embedded subset (MLP, `--epochs`),
 *   its backbone and head spaces next to raw pixels: kNN-vote placement, calibrated coverage,
 *   retrieval precision@10 (same class), and planted duplicates (re-encoded / shifted copies).
 *
 *   node dist/bench/search.js [--queries 1000] [--dim 64] [--trained] [--epochs 5]
 */
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '../src/engine/backend.js';
import { knnClassify } from '../src/eval/knn.js';
import { calibrate, EmbeddingIndex, type PathPrediction, predictPath } from '../src/search/index.js';
import { projectedFashionMnist } from '../test/search/fixtures.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const numQueries = Number(arg('queries', '1000'));
const dim = Number(arg('dim', '64'));
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
/** Resident memory after garbage collection has settled (run with --expose-gc for a sharper number). */
const settledRss = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return process.memoryUsage().rss;
};

await useBackend('wasm');
const data = await projectedFashionMnist(dim);
console.log(
  `search bench: ${data.count} Fashion-MNIST images (${data.source}), random projection to ${dim}-d, backend wasm`,
);
const items = Array.from({ length: data.count }, (_, i) => ({ id: i, label: data.paths[i] }));
const queryRows = Array.from({ length: numQueries }, (_, i) => (i * 7919) % data.count);
const queries = new Float32Array(numQueries * dim);
queryRows.forEach((row, i) => {
  queries.set(data.vectors.subarray(row * dim, (row + 1) * dim), i * dim);
});

// exact
let t = performance.now();
const index = EmbeddingIndex.create({ tree: data.tree, dim });
index.add(items, data.vectors);
index.search(queries.subarray(0, dim), { k: 10 }); // builds the search view (depth-first order + tensor)
const exactBuild = performance.now() - t;
// exact search holds the stored rows and one transposed copy (the search tensor): counted, not sampled
const exactMemory = 2 * data.count * dim * 4;
t = performance.now();
const single = Math.min(200, numQueries);
for (let q = 0; q < single; q++) index.search(queries.subarray(q * dim, (q + 1) * dim), { k: 10 });
const exactSingleQps = single / ((performance.now() - t) / 1000);
t = performance.now();
const exact = index.searchBatch(queries, { k: 10 });
const exactBatchQps = numQueries / ((performance.now() - t) / 1000);

// --within vs global (issue 24), per query, one at a time: a search within a node reads that node's
// run of the tree-ordered rows (a subarray of one product, or the run scored in place), never a copy
const withinCases = [
  { name: 'global', within: undefined as string[] | undefined },
  ...[0, 1, 2].map((level) => ({
    name: `within ${data.tree.levelNames[level]}`,
    // segments, not a joined path: Fashion-MNIST's T-shirt/top holds the separator
    within: data.tree.path(level, 0),
  })),
];
const withinTimes = withinCases.map(({ name, within }) => {
  const started = performance.now();
  for (let q = 0; q < single; q++) index.search(queries.subarray(q * dim, (q + 1) * dim), { k: 10, within });
  const perQuery = (performance.now() - started) / single;
  const size =
    within === undefined
      ? data.count
      : index.searchBatch(queries.subarray(0, dim), { k: data.count, within })[0].hits.length;
  return { name, within: within?.join(' › ') ?? '(all)', size, perQuery };
});

// HNSW
const rss0 = await settledRss();
t = performance.now();
await index.buildApproximate({ connectivity: 16, expansionAdd: 128, expansionSearch: 128 });
const hnswBuild = performance.now() - t;
const hnswMemory = (await settledRss()) - rss0;
t = performance.now();
for (let q = 0; q < numQueries; q++) index.search(queries.subarray(q * dim, (q + 1) * dim), { k: 10 });
const hnswSingleQps = numQueries / ((performance.now() - t) / 1000);
t = performance.now();
const approx = index.searchBatch(queries, { k: 10 });
const hnswBatchQps = numQueries / ((performance.now() - t) / 1000);
let found = 0;
approx.forEach((r, i) => {
  const truth = new Set(exact[i].hits.map((h) => h.id));
  found += r.hits.filter((h) => truth.has(h.id)).length;
});
const recall = found / (10 * numQueries);
index.dropApproximate();

console.log('');
console.log('search       node              items    ms per query (1 at a time, k=10, exact)');
for (const w of withinTimes)
  console.log(
    `${w.name.padEnd(12)} ${w.within.padEnd(16)} ${String(w.size).padStart(6)}    ${w.perQuery.toFixed(3)}`,
  );
console.log('');
console.log('method   build      memory              queries/s (1 at a time)  queries/s (batch)  recall@10');
console.log(
  `exact    ${(exactBuild / 1000).toFixed(2).padStart(6)} s  ${mb(exactMemory).padStart(12)}        ${exactSingleQps.toFixed(0).padStart(10)}               ${exactBatchQps.toFixed(0).padStart(8)}        1 (by definition)`,
);
console.log(
  `HNSW     ${(hnswBuild / 1000).toFixed(2).padStart(6)} s  ${mb(hnswMemory).padStart(12)}        ${hnswSingleQps.toFixed(0).padStart(10)}               ${hnswBatchQps.toFixed(0).padStart(8)}        ${recall.toFixed(4)}`,
);
console.log(
  `(exact memory: stored rows + the transposed search tensor, counted; HNSW: growth of resident memory while building the graph, on top of exact's (a loose lower bound: usearch keeps its own copy of the vectors plus ~2M links per node, about ${mb(data.count * (dim * 4 + 2 * 16 * 4))}); M=16, efConstruction=128, ef=128; ${numQueries} queries; load average ${(await import('node:os')).loadavg()[0].toFixed(1)})`,
);

// predictPath: train split as the index, test split halved into calibration and test
const train = EmbeddingIndex.create({ tree: data.tree, dim });
train.add(items.slice(0, data.trainCount), data.vectors.subarray(0, data.trainCount * dim));
const half = data.trainCount + Math.floor((data.count - data.trainCount) / 2);
const validation = {
  embeddings: data.vectors.slice(data.trainCount * dim, half * dim),
  labels: data.paths.slice(data.trainCount, half),
};
const testLabels = data.paths.slice(half);
const testEmbeddings = data.vectors.slice(half * dim);
const truth = data.tree.encode(testLabels);
const accuracyAt = (predictions: PathPrediction[], level: number, answeredOnly: boolean) => {
  let answered = 0;
  let right = 0;
  predictions.forEach((p, q) => {
    if (answeredOnly && p.depth <= level) return;
    answered++;
    if (p.levels.slice(0, level + 1).every((x, j) => x.id === truth[q * 3 + j])) right++;
  });
  return answered ? right / answered : Number.NaN;
};
const rows = (paths: string[][]) => paths.map((p) => data.tree.row(data.tree.encode([p])[2]));
const q = tf.tensor2d(testEmbeddings, [testLabels.length, dim]);
const db = tf.tensor2d(data.vectors.subarray(0, data.trainCount * dim), [data.trainCount, dim]);
const knn = knnClassify(q, rows(testLabels), db, rows(data.paths.slice(0, data.trainCount)));
tf.dispose([q, db]);
const calibration = calibrate(train, validation, { targetPrecision: 0.95 });
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
console.log('');
console.log(
  `predictPath (index: ${data.trainCount} train; calibration ${validation.labels.length}, test ${testLabels.length} of the test split)`,
);
console.log(`knnClassify (k=200, τ=0.07) accuracy by level: ${knn.accuracyByLevel.map(pct).join(' / ')}`);
for (const method of ['knn', 'prototype'] as const) {
  const full = predictPath(train, testEmbeddings, { method });
  const calibrated = predictPath(train, testEmbeddings, { method, calibration });
  const coverage = [0, 1, 2].map((l) => calibrated.filter((p) => p.depth > l).length / calibrated.length);
  console.log(
    `${method.padEnd(9)} full coverage accuracy: ${[0, 1, 2].map((l) => pct(accuracyAt(full, l, false))).join(' / ')}; at target 0.95: coverage ${coverage.map(pct).join(' / ')}, precision ${[0, 1, 2].map((l) => pct(accuracyAt(calibrated, l, true))).join(' / ')}`,
  );
}
console.log(
  `calibrate chose: ${calibration.method} (mean coverage at target: ${calibration.methods.map((m) => `${m.method} ${pct(m.meanCoverage)}`).join(', ')})`,
);

// a class the index has never seen
const unseen = 'Shirt';
const seenIndex = EmbeddingIndex.create({ tree: data.tree, dim });
const keep = items.slice(0, data.trainCount).filter((it) => data.paths[it.id][2] !== unseen);
seenIndex.add(
  keep,
  keep.map((it) => data.vectors.subarray(it.id * dim, (it.id + 1) * dim)),
);
const seenValidation = validation.labels.map((_, i) => i).filter((i) => validation.labels[i][2] !== unseen);
const seenCalibration = calibrate(
  seenIndex,
  {
    embeddings: seenValidation.map((i) => validation.embeddings.subarray(i * dim, (i + 1) * dim)),
    labels: seenValidation.map((i) => validation.labels[i]),
  },
  { targetPrecision: 0.95 },
);
const placed = predictPath(seenIndex, testEmbeddings, { calibration: seenCalibration });
const rate = (isUnseen: boolean, depth: number) => {
  const group = placed.filter((_, i) => (testLabels[i][2] === unseen) === isUnseen);
  return group.filter((p) => p.depth === depth).length / group.length;
};
console.log(
  `held-out class ${unseen} (not in the index): answered at the class level ${pct(rate(true, 3))} vs seen classes ${pct(rate(false, 3))}; at the family level (a parent) ${pct(rate(true, 2))} vs ${pct(rate(false, 2))}`,
);

// the HTTP API under load: 2,000 /search requests, 8 at a time, loopback only, exact search on 70k
{
  const { createSearchServer } = await import('../src/serve/index.js');
  const server = createSearchServer(index);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const total = 2000;
  const concurrency = 8;
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const row = (next++ * 104729) % data.count;
        const body = JSON.stringify({
          vector: Array.from(data.vectors.subarray(row * dim, (row + 1) * dim)),
          k: 10,
        });
        const t0 = performance.now();
        const response = await fetch(`${base}/search`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await response.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (response.status !== 200) errors++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))].toFixed(1);
  console.log('');
  console.log(
    `serve: ${total} POST /search (exact, k=10, ${data.count} items), ${concurrency} concurrent over loopback: ${(total / seconds).toFixed(0)} queries/s, latency p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, ${errors} errors; ${server.stats.batches} batched products for ${server.stats.queries} queries`,
  );
  await new Promise<void>((done) => server.close(() => done()));
}

if (process.argv.includes('--trained')) {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } = await import('../src/data/fashionMnist.js');
  const { resolveTrainConfig } = await import('../src/train/config.js');
  const { train: trainRun } = await import('../src/run/train.js');
  const { ProgressReporter } = await import('../src/train/progress.js');
  const { findDuplicates, openRunEncoder } = await import('../src/search/index.js');
  const { Rng } = await import('../src/random.js');
  const { plantedCopy } = await import('../test/search/fixtures.js');
  const epochs = Number(arg('epochs', '5'));
  const dir = await mkdtemp(join(tmpdir(), 'search-bench-'));
  const runDir = join(dir, 'run');
  const config = await resolveTrainConfig({
    out: runDir,
    dataDir: EMBEDDED_FASHION_MNIST_DIR,
    backend: 'wasm',
    encoder: 'mlp',
    method: 'himulcone',
    epochs,
    batchSize: 256,
    evalEvery: 0,
    seed: 0,
  });
  const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
  t = performance.now();
  await trainRun(config, { progress: new ProgressReporter(sink, false) });
  console.log('');
  console.log(
    `trained HiMulConE (MLP, ${epochs} epochs, embedded 6,000 / 1,000 subset) in ${((performance.now() - t) / 1000).toFixed(0)} s`,
  );
  const trainSplit = await loadFashionMnist({ split: 'train', dataDir: EMBEDDED_FASHION_MNIST_DIR });
  const testSplit = await loadFashionMnist({ split: 'test', dataDir: EMBEDDED_FASHION_MNIST_DIR });
  const tree = trainSplit.tree;
  const nTest = testSplit.shape[0];
  // planted copies of 200 test images: even ones re-encoded + noised, odd ones also shifted 1 px
  const rng = new Rng(11);
  const originals = Array.from(rng.permutation(nTest).subarray(0, 200));
  const copies = new Float32Array(200 * 784);
  for (const [c, i] of originals.entries())
    copies.set(await plantedCopy(testSplit.images.subarray(i * 784, (i + 1) * 784), c % 2, 0, rng), c * 784);
  const spaces: {
    name: string;
    embed: (images: Float32Array, n: number) => Promise<Float32Array>;
    dim: number;
  }[] = [{ name: 'raw pixels', embed: async (images) => images, dim: 784 }];
  for (const space of ['backbone', 'head'] as const) {
    const encoder = await openRunEncoder(runDir, space);
    const probe = encoder.embed(tf.zeros([1, ...encoder.inputShape]));
    const d = probe.shape[1];
    probe.dispose();
    spaces.push({
      name: space,
      dim: d,
      embed: async (images, n) => {
        const out = new Float32Array(n * d);
        for (let s = 0; s < n; s += 256) {
          const e = Math.min(n, s + 256);
          const y = encoder.embed(
            tf.tensor(images.subarray(s * 784, e * 784), [e - s, ...encoder.inputShape]),
          );
          out.set(y.dataSync() as Float32Array, s * d);
          y.dispose();
        }
        return out;
      },
    });
  }
  const trainPaths = Array.from(trainSplit.classIds, (c) => tree.path(2, c));
  const testPaths = Array.from(testSplit.classIds, (c) => tree.path(2, c));
  const testTruth = tree.encode(testPaths);
  const halfTest = nTest / 2;
  console.log(
    'space       dim  kNN-vote acc (group/family/class)  coverage at 0.95 (test half)  precision@10 class  dupes: re-encoded P/R   shifted R',
  );
  for (const space of spaces) {
    const trainVectors = await space.embed(trainSplit.images, trainSplit.shape[0]);
    const testVectors = await space.embed(testSplit.images, nTest);
    const catalogue = EmbeddingIndex.create({ tree, dim: space.dim });
    catalogue.add(
      trainPaths.map((label, i) => ({ id: i, label })),
      trainVectors,
    );
    const full = predictPath(catalogue, testVectors, { method: 'knn' });
    const acc = [0, 1, 2].map(
      (l) =>
        full.filter((p, q) => p.levels.slice(0, l + 1).every((x, j) => x.id === testTruth[q * 3 + j]))
          .length / nTest,
    );
    const cal = calibrate(catalogue, {
      embeddings: testVectors.slice(0, halfTest * space.dim),
      labels: testPaths.slice(0, halfTest),
    });
    const placed = predictPath(catalogue, testVectors.slice(halfTest * space.dim), { calibration: cal });
    const coverage = [0, 1, 2].map((l) => placed.filter((p) => p.depth > l).length / placed.length);
    const results = catalogue.searchBatch(testVectors, { k: 10 });
    let same = 0;
    results.forEach((r, q) => {
      same += r.hits.filter((h) => h.label?.[2] === testPaths[q][2]).length;
    });
    // duplicates among the test images and their planted copies
    const copyVectors = await space.embed(copies, 200);
    const dupes = EmbeddingIndex.create({ tree, dim: space.dim });
    dupes.add(
      testPaths.map((label, i) => ({ id: i, label })),
      testVectors,
    );
    dupes.add(
      originals.map((i) => ({ id: `copy-${i}`, label: testPaths[i] })),
      copyVectors,
    );
    const pairs = originals.map((i, c) => ({ a: String(i), b: `copy-${i}`, shifted: c % 2 === 1 }));
    const known = pairs.filter((p, c) => c < 50 && !p.shifted).map((p) => [p.a, p.b] as [string, string]);
    const knownIds = new Set(known.flat());
    const report = findDuplicates(dupes, { targetPrecision: 0.99, knownPairs: known });
    const isPlanted = (a: string, b: string) =>
      pairs.find((p) => (p.a === a && p.b === b) || (p.a === b && p.b === a));
    const judged = report.pairs.filter((p) => !knownIds.has(p.a) && !knownIds.has(p.b));
    const plain = pairs.filter((p, c) => c >= 50 && !p.shifted);
    const shiftedPairs = pairs.filter((p) => p.shifted);
    const foundPlain = plain.filter((p) => report.pairs.some((q) => isPlanted(q.a, q.b) === p)).length;
    const foundShifted = shiftedPairs.filter((p) =>
      report.pairs.some((q) => isPlanted(q.a, q.b) === p),
    ).length;
    const right = judged.filter((p) => isPlanted(p.a, p.b)).length;
    console.log(
      `${space.name.padEnd(10)} ${String(space.dim).padStart(4)}  ${acc.map(pct).join(' / ').padEnd(33)} ${coverage.map(pct).join(' / ').padEnd(29)} ${pct(same / (10 * nTest)).padEnd(19)} ${pct(judged.length ? right / judged.length : 0)} / ${pct(foundPlain / plain.length)}        ${pct(foundShifted / shiftedPairs.length)}`,
    );
    catalogue.dispose();
    dupes.dispose();
  }
  console.log(
    '(duplicates: threshold calibrated for 0.99 precision on 25 known re-encoded pairs; P/R on the other 75 re-encoded pairs, R on 100 shifted ones)',
  );

  // the held-out-classes protocol: a run trained without Shirt, an index without Shirt
  const heldOutRun = join(dir, 'heldout');
  await trainRun(await resolveTrainConfig({ ...config, out: heldOutRun, holdoutClasses: ['Shirt'] }), {
    progress: new ProgressReporter(sink, false),
  });
  for (const [name, run] of [
    ['trained without Shirt', heldOutRun],
    ['raw pixels', null],
  ] as const) {
    const encoder = run ? await openRunEncoder(run) : null;
    const embedAll = async (images: Float32Array, n: number) => {
      if (!encoder) return images;
      const y = encoder.embed(tf.tensor(images, [n, ...encoder.inputShape]));
      const out = Float32Array.from(y.dataSync());
      y.dispose();
      return out;
    };
    const trainVectors = await embedAll(trainSplit.images, trainSplit.shape[0]);
    const testVectors = await embedAll(testSplit.images, nTest);
    const d = trainVectors.length / trainSplit.shape[0];
    const seen = EmbeddingIndex.create({ tree, dim: d });
    const keepRows = trainPaths.map((_, i) => i).filter((i) => trainPaths[i][2] !== 'Shirt');
    seen.add(
      keepRows.map((i) => ({ id: i, label: trainPaths[i] })),
      keepRows.map((i) => trainVectors.subarray(i * d, (i + 1) * d)),
    );
    const calRows = Array.from({ length: halfTest }, (_, i) => i).filter((i) => testPaths[i][2] !== 'Shirt');
    const cal = calibrate(seen, {
      embeddings: calRows.map((i) => testVectors.subarray(i * d, (i + 1) * d)),
      labels: calRows.map((i) => testPaths[i]),
    });
    const placed = predictPath(seen, testVectors.slice(halfTest * d), { calibration: cal });
    const share = (shirt: boolean, depth: number) => {
      const group = placed.filter((_, j) => (testPaths[halfTest + j][2] === 'Shirt') === shirt);
      return group.filter((p) => p.depth === depth).length / group.length;
    };
    console.log(
      `held-out Shirt, ${name}: answered at the class level ${pct(share(true, 3))} (seen classes ${pct(share(false, 3))}); stopped at a parent (family) ${pct(share(true, 2))} (seen ${pct(share(false, 2))}) [${cal.method}, target 0.95]`,
    );
    encoder?.dispose();
    seen.dispose();
  }
  await rm(dir, { recursive: true, force: true });
}
