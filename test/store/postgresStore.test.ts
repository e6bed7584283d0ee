/**
 * PostgresStore: search from the store = in-memory exact search (same top-10 sets, ties aside) for
 * the whole catalogue and within every node of the Fashion-MNIST tree, against PGlite in-process
 * and against a pglite-socket server through `pg`; the HNSW path's recall per node; the schema
 * checks (model, dimension), incremental add/remove with stale prototypes, and one-line errors.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import { ltree } from '@electric-sql/pglite/contrib/ltree';
import { vector } from '@electric-sql/pglite/vector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { EmbeddingIndex, type SearchHit } from '../../src/search/index.js';
import { decodeLtreeLabel, encodeLtreeLabel, PostgresStore } from '../../src/store/index.js';
import { projectedFashionMnist } from '../search/fixtures.js';

const K = 10;
const TIE = 1e-5;

/** Same top-k sets, ties aside: every store hit scores at least the exact k-th, and every clearly better exact hit is there. */
function assertSameTopK(got: SearchHit[], exact: SearchHit[], label: string): void {
  assert.equal(got.length, exact.length, `${label}: number of hits`);
  if (exact.length === 0) return;
  const kth = exact[exact.length - 1].score;
  const exactScore = new Map(exact.map((h) => [h.id, h.score]));
  const ids = new Set(got.map((h) => h.id));
  for (const h of got) {
    assert.ok(h.score >= kth - TIE, `${label}: hit ${h.id} scores ${h.score} < k-th ${kth}`);
    if (exactScore.has(h.id))
      assert.ok(Math.abs(exactScore.get(h.id)! - h.score) < TIE, `${label}: score of ${h.id}`);
  }
  for (const h of exact)
    if (h.score > kth + TIE) assert.ok(ids.has(h.id), `${label}: missing ${h.id} (${h.score})`);
}

/** Every node's path of the tree, plus the whole catalogue (undefined). */
function scopes(index: EmbeddingIndex): (string[] | undefined)[] {
  const tree = index.tree;
  const out: (string[] | undefined)[] = [undefined];
  for (let l = 0; l < tree.depth; l++)
    for (let id = 0; id < tree.levelSizes[l]; id++) out.push(tree.path(l, id));
  return out;
}

let index: EmbeddingIndex;
let queryIds: string[];

before(async () => {
  await useBackend('wasm');
  const data = await projectedFashionMnist(16, 7, 1200);
  index = EmbeddingIndex.create({
    tree: data.tree,
    dim: data.dim,
    model: { checksum: 'a'.repeat(64), source: 'runs/fixture' },
  });
  index.add(
    Array.from({ length: data.count }, (_, i) => ({
      id: i,
      label: i % 97 === 5 ? null : data.paths[i], // a few unlabelled items
      source: `item-${i}.png`,
    })),
    data.vectors,
  );
  queryIds = [0, 7, 123, 500, 901, 1300].map(String);
});

async function checkEquivalence(store: PostgresStore, label: string): Promise<void> {
  for (const within of scopes(index)) {
    for (const id of queryIds) {
      const exact = index.search({ id }, { k: K, within, approximate: false }).hits;
      const got = await store.search({ id }, { k: K, within });
      assert.equal(got.plan, 'exact', `${label} ${within}: plan`);
      assertSameTopK(got.hits, exact, `${label} within ${within ?? '(all)'} query ${id}`);
      assert.deepEqual(
        got.hits.map((h) => h.label),
        got.hits.map((h) => index.item(h.id).label),
        'labels come back as paths',
      );
    }
  }
  // a vector query too
  const vector = index.embedding('42');
  const exact = index.search({ vector }, { k: K, within: 'Clothes/Tops', approximate: false }).hits;
  assertSameTopK(
    (await store.search({ vector }, { k: K, within: 'Clothes/Tops' })).hits,
    exact,
    `${label} vector`,
  );
}

describe('PostgresStore on embedded PGlite', () => {
  let store: PostgresStore;
  before(async () => {
    store = await PostgresStore.open('pglite:memory:');
    const { inserted, items } = await store.write(index);
    assert.equal(inserted, index.size);
    assert.equal(items, index.size);
  });
  after(() => store.close());

  it('searches exactly like the in-memory index, for the catalogue and within every node', async () => {
    await checkEquivalence(store, 'pglite');
  });

  it('records the model, dimension and tree, and escapes class names into ltree labels', async () => {
    const info = (await store.info())!;
    assert.equal(info.dim, 16);
    assert.equal(info.model?.source, 'runs/fixture');
    assert.equal(info.state, 'ready');
    assert.equal(info.approximate, true);
    assert.equal(info.items, index.size);
    const rows = await store.query<{ path: string; label_path: string }>(
      "SELECT path::text AS path, label_path FROM contrastive_nodes WHERE label_path LIKE '%T-shirt%'",
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].path.split('.').at(-1), 'T_2Dshirt_2Ftop');
    assert.equal(encodeLtreeLabel('T-shirt/top'), 'T_2Dshirt_2Ftop');
    for (const name of ['T-shirt/top', 'Ankle boot', 'a_b', 'Été', '日本', '.'])
      assert.equal(decodeLtreeLabel(encodeLtreeLabel(name)), name);
  });

  it('writing the same index again adds nothing (ids kept), and the store stays ready', async () => {
    const again = await store.write(index, { approximate: false });
    assert.equal(again.inserted, 0);
    assert.equal(again.items, index.size);
  });

  it('refuses another model and another dimension by name', async () => {
    const other = EmbeddingIndex.create({
      tree: index.tree,
      dim: 16,
      model: { checksum: 'b'.repeat(64), source: 'runs/other' },
    });
    other.add([{ id: 'x', label: null }], [Array.from({ length: 16 }, () => 1)]);
    await assert.rejects(store.write(other), (e: Error) => {
      assert.ok(e instanceof ContrastiveError);
      assert.match(e.message, /written by the model from runs\/fixture .* come from runs\/other/);
      return true;
    });
    const wide = EmbeddingIndex.create({ tree: index.tree, dim: 8, model: index.model });
    wide.add([{ id: 'y', label: null }], [Array.from({ length: 8 }, () => 1)]);
    await assert.rejects(store.write(wide), /holds 16-dimensional embeddings, but these have 8/);
    await assert.rejects(
      store.search({ vector: [1, 2] }),
      /16 numbers \(the store's dimension\), but got 2 numbers/,
    );
    await assert.rejects(store.search({ id: 'nope' }), /"nope" is not one/);
    await assert.rejects(
      store.search({ id: '0' }, { within: 'Clothes/Topz' }),
      /did you mean "Clothes\/Tops"/,
    );
  });

  it('HNSW (a partial index per large node, iterative scans) keeps recall@10 >= 0.98 in every node (forced approximate)', async () => {
    const approx = await PostgresStore.open('pglite:memory:', { exactUpTo: 0 });
    try {
      await approx.write(index);
      const explained = await approx.explain({ id: '0' }, { within: ['Clothes', 'Tops'] });
      assert.equal(explained.plan, 'approximate');
      // a large node walks its own partial HNSW index (Clothes is level 0, node 0; Tops level 1, node 0)
      assert.match(explained.lines.join('\n'), /Index Scan using contrastive_items_hnsw_n1_0\b/);
      assert.equal(
        (await approx.search({ id: '0' }, { within: ['Clothes', 'Tops'] })).index,
        'contrastive_items_hnsw_n1_0',
      );
      assert.equal((await approx.search({ id: '0' })).index, 'contrastive_items_hnsw');
      const small = await store.explain({ id: '0' }, { within: ['Clothes', 'Tops'] });
      assert.equal(small.plan, 'exact');
      assert.doesNotMatch(small.lines.join('\n'), /contrastive_items_hnsw/);
      for (const within of scopes(index)) {
        let found = 0;
        let wanted = 0;
        for (const id of queryIds) {
          const exact = index.search({ id }, { k: K, within, approximate: false }).hits;
          const got = await approx.search({ id }, { k: K, within });
          assert.equal(got.plan, 'approximate');
          assert.equal(got.hits.length, exact.length, `${within}: a filtered search returns k hits`);
          const ids = new Set(got.hits.map((h) => h.id));
          const kth = exact.at(-1)!.score;
          wanted += exact.length;
          found += exact.filter((h) => ids.has(h.id) || h.score <= kth + TIE).length;
        }
        assert.ok(found / wanted >= 0.98, `${within ?? '(all)'}: recall ${found / wanted}`);
      }
    } finally {
      await approx.close();
    }
  });

  it('adds and removes items without a rebuild; prototypes and calibration are marked stale', async () => {
    const inc = await PostgresStore.open('pglite:memory:');
    try {
      await inc.write(index);
      await inc.writeCalibration('predict', { temperature: 1 });
      const fresh = await inc.prototypes(1);
      assert.equal(fresh.stale, false);
      const memory = index.prototypes(1);
      assert.deepEqual(Array.from(fresh.counts), Array.from(memory.counts));
      for (let i = 0; i < memory.vectors.length; i++)
        assert.ok(Math.abs(fresh.vectors[i] - memory.vectors[i]) < 1e-4);
      const v = index.embedding('0');
      assert.equal(await inc.add([{ id: 'new-1', label: index.item('0').label }], [v]), 1);
      await assert.rejects(inc.add([{ id: 'new-1', label: null }], [v]), /"new-1" must be new/);
      assert.equal(await inc.add([{ id: 'new-1', label: null }], [v], { ifExists: 'skip' }), 0);
      const info = (await inc.info())!;
      assert.equal(info.prototypesStale, true);
      assert.equal(info.calibrationStale, true);
      assert.equal((await inc.readCalibration('predict'))?.stale, true);
      const hits = (await inc.search({ vector: v }, { k: 2 })).hits.map((h) => h.id).sort();
      assert.deepEqual(hits, ['0', 'new-1']);
      await assert.rejects(inc.remove(['new-1', 'absent']), /"absent" is not one; nothing was removed/);
      assert.equal(await inc.remove(['new-1', '0']), 2);
      assert.equal((await inc.info())!.items, index.size - 1);
      await inc.refreshPrototypes();
      assert.equal((await inc.prototypes(0)).stale, false);
    } finally {
      await inc.close();
    }
  });

  it('a build that did not finish is never searched as if complete', async () => {
    const half = await PostgresStore.open('pglite:memory:');
    try {
      await half.prepare({ dim: index.dim, space: 'backbone', model: index.model, tree: index.tree }, 10);
      await half.add([{ id: 'a', label: null }], [index.embedding('0')]);
      await assert.rejects(half.search({ id: 'a' }), /still being built \(1 of 10 items\)/);
      await assert.rejects(
        half.finish(),
        /holds 1 items but the build expects 10; run the import or the workers again/,
      );
      assert.equal((await half.info())!.state, 'building');
    } finally {
      await half.close();
    }
  });

  it('keeps what it wrote in a folder across opens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-'));
    try {
      const first = await PostgresStore.open(`pglite:${dir}/catalogue.pg`);
      await first.write(index, { approximate: false });
      await first.close();
      const second = await PostgresStore.open(`pglite:${dir}/catalogue.pg`);
      assert.equal((await second.info())!.items, index.size);
      const loaded = await second.loadIndex();
      assert.equal(loaded.size, index.size);
      assert.deepEqual(loaded.item('17'), index.item('17'));
      assert.deepEqual(Array.from(loaded.embedding('17')), Array.from(index.embedding('17')));
      await second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PostgresStore on a pglite-socket server through pg', () => {
  let db: PGlite;
  let server: PGLiteSocketServer;
  let url: string;
  before(async () => {
    db = await PGlite.create('memory://', { extensions: { vector, ltree } });
    server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 8 });
    await server.start();
    url = `postgres://postgres:secret@${server.getServerConn()}/postgres`;
  });
  after(async () => {
    await server.stop();
    await db.close();
  });

  it('searches exactly like the in-memory index, for the catalogue and within every node', async () => {
    const store = await PostgresStore.open(url);
    try {
      assert.equal(store.kind, 'postgres');
      assert.equal(store.url.includes('secret'), false, 'the password is hidden');
      await store.write(index, { batchSize: 400 });
      await checkEquivalence(store, 'socket');
    } finally {
      await store.close();
    }
  });
});

describe('PostgresStore: a store that cannot be reached is a one-line error', () => {
  it('names a server that does not answer', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(PostgresStore.open(`postgres://u:pw@127.0.0.1:${port}/db`), (e: Error) => {
      assert.ok(e instanceof ContrastiveError);
      assert.match(
        e.message,
        /does not answer \(ECONNREFUSED\); start the server or fix the host and port in --store/,
      );
      assert.doesNotMatch(e.message, /pw@/);
      assert.equal(e.message.includes('\n'), false);
      return true;
    });
  });

  it('names a wrong password', async () => {
    // a server that asks for a password and refuses it, as PostgreSQL does (SQLSTATE 28P01)
    const server: Server = createServer((socket) => {
      socket.once('data', () => {
        socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // AuthenticationCleartextPassword
        socket.once('data', () => {
          const fields = Buffer.concat(
            ['SFATAL', 'VFATAL', 'C28P01', 'Mpassword authentication failed for user "u"'].map((f) =>
              Buffer.from(`${f}\0`),
            ),
          );
          const body = Buffer.concat([fields, Buffer.from([0])]);
          const head = Buffer.alloc(5);
          head.write('E', 0);
          head.writeInt32BE(body.length + 4, 1);
          socket.end(Buffer.concat([head, body]));
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      await assert.rejects(PostgresStore.open(`postgres://u:wrong@127.0.0.1:${port}/db`), (e: Error) => {
        assert.ok(e instanceof ContrastiveError);
        assert.match(
          e.message,
          /refused the login \(password authentication failed for user "u"\); fix the user and password in --store/,
        );
        assert.doesNotMatch(e.message, /wrong/);
        return true;
      });
    } finally {
      server.close();
    }
  });

  it('names a bad URL', async () => {
    await assert.rejects(PostgresStore.open('mysql://x'), /must start with pglite: .* or postgres:\/\//);
    await assert.rejects(PostgresStore.open('pglite:'), /pglite: needs a folder/);
  });
});
