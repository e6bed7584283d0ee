/**
 * Store benchmark (issue 21): the file index, an embedded PGlite store and the same PGlite served
 * over the wire protocol (pglite-socket, through `pg`), on one synthetic catalogue with the
 * Fashion-MNIST tree: every Fashion-MNIST image projected to `--dim` (seeded), repeated with
 * seeded Gaussian noise up to `--items`.
 * - build rate (items/s): EmbeddingIndex add + save; store.write (inserts, HNSW index, prototypes);
 * - search: q/s, p50/p99 of one query at a time, whole catalogue and `within` every node;
 * - recall@10 per node of each store against the in-memory exact search (ties aside), and which plan ran.
 *
 *   node dist/bench/store.js [--items 100000] [--dim 64] [--queries 50] [--exact-up-to 20000]
 *     [--ef-search 200[,400…]] [--stores pglite,socket]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { ltree } from '@electric-sql/pglite/contrib/ltree';
import { vector } from '@electric-sql/pglite/vector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { useBackend } from '../src/engine/backend.js';
import { Rng } from '../src/random.js';
import { EmbeddingIndex, type SearchHit } from '../src/search/index.js';
import { PostgresStore } from '../src/store/index.js';
import { projectedFashionMnist } from '../test/search/fixtures.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const numItems = Number(arg('items', '100000'));
const dim = Number(arg('dim', '64'));
const numQueries = Number(arg('queries', '50'));
const exactUpTo = Number(arg('exact-up-to', '20000'));
const efSearches = arg('ef-search', '200').split(',').map(Number);
const stores = arg('stores', 'pglite,socket').split(',');

await useBackend('wasm');
const base = await projectedFashionMnist(dim);
const rng = new Rng(11);
const vectors = new Float32Array(numItems * dim);
const leaves = new Int32Array(numItems);
for (let i = 0; i < numItems; i++) {
  const row = i % base.count;
  leaves[i] = base.leaves[row];
  let norm = 0;
  for (let j = 0; j < dim; j++) norm += base.vectors[row * dim + j] ** 2;
  const noise = i < base.count ? 0 : 0.05 * Math.sqrt(norm / dim);
  for (let j = 0; j < dim; j++) vectors[i * dim + j] = base.vectors[row * dim + j] + noise * rng.normal();
}
const tree = base.tree;
const items = Array.from({ length: numItems }, (_, i) => ({
  id: i,
  label: tree.path(tree.depth - 1, leaves[i]),
}));
console.log(
  `store bench: ${numItems} items (${base.count} Fashion-MNIST images from ${base.source}, projected to ${dim}-d, repeated with noise), ${numQueries} queries per scope, exactUpTo ${exactUpTo}`,
);

const scopes: (string[] | undefined)[] = [undefined];
for (let l = 0; l < tree.depth; l++)
  for (let id = 0; id < tree.levelSizes[l]; id++) scopes.push(tree.path(l, id));
const queryIds = Array.from({ length: numQueries }, (_, q) => String((q * 7919 + 13) % numItems));
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const name = (scope: string[] | undefined) => (scope ? scope.join('/') : '(all)');

const dir = mkdtempSync(join(tmpdir(), 'store-bench-'));
try {
  // the file index
  let t = performance.now();
  const index = EmbeddingIndex.create({ tree, dim });
  index.add(items, vectors);
  await index.save(join(dir, 'catalogue.index'));
  const fileBuild = (performance.now() - t) / 1000;
  const exact = new Map<string, SearchHit[][]>();
  const fileTimes: number[] = [];
  for (const scope of scopes) {
    const lists: SearchHit[][] = [];
    for (const id of queryIds) {
      const s = performance.now();
      lists.push(index.search({ id }, { k: 10, within: scope, approximate: false }).hits);
      fileTimes.push(performance.now() - s);
    }
    exact.set(name(scope), lists);
  }
  const report = (label: string, build: number, times: number[], extra = '') => {
    const sorted = [...times].sort((a, b) => a - b);
    const total = times.reduce((a, b) => a + b, 0) / 1000;
    console.log(
      `${label.padEnd(22)} build ${build.toFixed(1)} s (${Math.round(numItems / build)} items/s)  search ${(times.length / total).toFixed(1)} q/s, p50 ${pct(sorted, 0.5).toFixed(1)} ms, p99 ${pct(sorted, 0.99).toFixed(1)} ms${extra}`,
    );
  };
  report(
    'file index (exact)',
    fileBuild,
    fileTimes,
    `  file ${(statSync(join(dir, 'catalogue.index')).size / 2 ** 20).toFixed(0)} MB`,
  );

  const measureStore = async (label: string, store: PostgresStore, build: number) => {
    for (const efSearch of efSearches)
      await measureStoreAt(`${label} ef ${efSearch}`, store, build, efSearch);
  };
  const measureStoreAt = async (label: string, store: PostgresStore, build: number, efSearch: number) => {
    const times: number[] = [];
    const lines: string[] = [];
    let worst = 1;
    for (const scope of scopes) {
      let found = 0;
      let wanted = 0;
      const plans = new Set<string>();
      let size = 0;
      const truth = exact.get(name(scope))!;
      for (let q = 0; q < queryIds.length; q++) {
        const s = performance.now();
        const got = await store.search({ id: queryIds[q] }, { k: 10, within: scope, efSearch });
        times.push(performance.now() - s);
        plans.add(got.plan);
        size = got.scopeSize;
        const ids = new Set(got.hits.map((h) => h.id));
        const kth = truth[q].at(-1)?.score ?? 0;
        wanted += truth[q].length;
        // ties aside: a missed hit scoring the k-th score is not a miss
        found += truth[q].filter((h) => ids.has(h.id) || h.score <= kth + 1e-5).length;
      }
      const recall = wanted ? found / wanted : 1;
      worst = Math.min(worst, recall);
      lines.push(
        `  ${name(scope).padEnd(28)} ${[...plans].join('+').padEnd(11)} scope ${size > exactUpTo ? `>${exactUpTo}` : size}  recall@10 ${recall.toFixed(3)}`,
      );
    }
    report(label, build, times, `  worst node recall@10 ${worst.toFixed(3)}`);
    // which index each plan's query uses, by PostgreSQL's EXPLAIN
    for (const within of [undefined, ['Clothes', 'Tops'], ['Clothes', 'Tops', 'Shirt']]) {
      const { plan, lines } = await store.explain({ id: queryIds[0] }, { k: 10, within });
      const used = lines.join(' ').match(/Index Scan using (\w+)|Bitmap Index Scan on (\w+)|Seq Scan/g) ?? [];
      console.log(`  EXPLAIN within ${name(within)}: ${plan} plan, ${[...new Set(used)].join(', ')}`);
    }
    for (const line of lines) console.log(line);
  };

  // embedded PGlite
  if (stores.includes('pglite')) {
    t = performance.now();
    const embedded = await PostgresStore.open(`pglite:${join(dir, 'catalogue.pg')}`, { exactUpTo });
    await embedded.write(index, { batchSize: 2000 });
    const pgliteBuild = (performance.now() - t) / 1000;
    await measureStore('PGlite (embedded)', embedded, pgliteBuild);
    await embedded.close();
  }

  // the same engine behind the wire protocol
  if (stores.includes('socket')) {
    const db = await PGlite.create('memory://', { extensions: { vector, ltree } });
    const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 8 });
    await server.start();
    t = performance.now();
    const remote = await PostgresStore.open(`postgres://postgres:x@${server.getServerConn()}/postgres`, {
      exactUpTo,
    });
    await remote.write(index, { batchSize: 2000 });
    const socketBuild = (performance.now() - t) / 1000;
    await measureStore('pglite-socket via pg', remote, socketBuild);
    await remote.close();
    await server.stop();
    await db.close();
  }
  index.dispose();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
