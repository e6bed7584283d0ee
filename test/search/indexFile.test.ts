/** The index file: round trip, and clear errors for newer, older, corrupt and foreign files. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { LabelTree } from '../../src/hierarchy/labelTree.js';
import { Rng } from '../../src/random.js';
import { decodeIndexFile, EmbeddingIndex, encodeIndexFile } from '../../src/search/index.js';
import { tempRuns } from '../helpers/train.js';

describe('EmbeddingIndex save / load', () => {
  const tree = LabelTree.fromPaths(['Clothes/Tops/Shirt', 'Clothes/Bottoms/Trouser', 'Goods/Shoes/Sneaker'], {
    levelNames: ['group', 'family', 'class'],
  });
  let dir: string;
  let index: EmbeddingIndex;
  let path: string;
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    const rng = new Rng(1);
    index = EmbeddingIndex.create({
      tree,
      dim: 5,
      space: 'head',
      model: { checksum: 'ab'.repeat(32), source: 'runs/x' },
    });
    const labels = tree.classes(2);
    index.add(
      Array.from({ length: 50 }, (_, i) => ({
        id: `item-${i}`,
        label: i % 7 === 0 ? null : tree.path(2, i % labels.length),
        source: i % 2 ? `img/${i}.png` : undefined,
        thumbnail: i === 3 ? 'data:image/png;base64,AAAA' : undefined,
      })),
      Array.from({ length: 50 }, () => Array.from({ length: 5 }, () => rng.normal())),
    );
    index.remove(['item-10', 'item-11']);
    path = join(dir, 'catalogue.index');
    await index.save(path);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips items, vectors, tree, space, model and search results', async () => {
    const loaded = await EmbeddingIndex.load(path);
    assert.equal(loaded.size, 48);
    assert.equal(loaded.space, 'head');
    assert.deepEqual(loaded.model, index.model);
    assert.deepEqual(loaded.tree.toJSON(), tree.toJSON());
    assert.deepEqual(loaded.items(), index.items());
    assert.deepEqual(loaded.matrix(), index.matrix());
    const q = { id: 'item-5' };
    assert.deepEqual(
      loaded.search(q, { k: 7, within: 'Clothes' }),
      index.search(q, { k: 7, within: 'Clothes' }),
    );
    assert.equal(loaded.approximate, false);
  });

  it('keeps approximate search on when it was on', async () => {
    const copy = await EmbeddingIndex.load(path);
    await copy.buildApproximate({ connectivity: 8, expansionAdd: 32, expansionSearch: 32 });
    const approxPath = join(dir, 'approx.index');
    await copy.save(approxPath);
    const loaded = await EmbeddingIndex.load(approxPath);
    assert.equal(loaded.approximate, true);
    assert.equal(loaded.search({ id: 'item-1' }, { k: 3 }).approximate, true);
  });

  it('an approximate index stores its graph and loads it without rebuilding; a stale or forged graph is rebuilt, never a crash', async () => {
    const copy = await EmbeddingIndex.load(path);
    copy.remove(['item-2']); // keys are no longer row numbers
    await copy.buildApproximate({ connectivity: 8, expansionAdd: 32, expansionSearch: 32 });
    copy.add([{ id: 'late', label: 'Goods/Shoes/Sneaker' }], [[1, 2, 3, 4, 5]]);
    const approxPath = join(dir, 'graph.index');
    await copy.save(approxPath);
    const loaded = await EmbeddingIndex.load(approxPath);
    assert.equal(loaded.approximateFrom, 'file');
    for (const id of ['item-1', 'late', 'item-40']) {
      const want = copy.search({ id }, { k: 5 });
      const got = loaded.search({ id }, { k: 5 });
      assert.equal(got.approximate, true);
      assert.deepEqual(
        got.hits.map((h) => h.id),
        want.hits.map((h) => h.id),
      );
    }
    loaded.add([{ id: 'after-load' }], [[5, 4, 3, 2, 1]]);
    assert.equal(loaded.search({ vector: [5, 4, 3, 2, 1] }, { k: 1 }).hits[0].id, 'after-load');

    // vectors changed under the old graph, checksum recomputed: the graph is stale, rebuilt
    const stale = decodeIndexFile(await readFile(approxPath), 'graph.index');
    stale.vectors.set(stale.vectors.subarray(0, 5), 5);
    const stalePath = join(dir, 'stale.index');
    await writeFile(stalePath, encodeIndexFile(stale));
    const rebuilt = await EmbeddingIndex.load(stalePath);
    assert.equal(rebuilt.approximateFrom, 'built');

    // the graph's bytes forged (checksum recomputed): loaded in a child process, which must end
    // with a rebuilt graph or a one-line error, never a crash
    for (const [name, forge] of [
      ['zeroed', (b: Uint8Array) => b.fill(0, 64)],
      ['shuffled', (b: Uint8Array) => b.reverse()],
      ['ones', (b: Uint8Array) => b.fill(0xff, Math.floor(b.length / 2))],
      ['truncated', (b: Uint8Array) => b.subarray(0, Math.floor(b.length / 3))],
    ] as const) {
      const forged = decodeIndexFile(await readFile(approxPath), 'graph.index');
      forged.graph = { ...forged.graph!, bytes: forge(forged.graph!.bytes.slice()) };
      const forgedPath = join(dir, `forged-${name}.index`);
      await writeFile(forgedPath, encodeIndexFile(forged));
      const script = `import { EmbeddingIndex } from ${JSON.stringify(new URL('../../src/search/index.js', import.meta.url).href)};
const index = await EmbeddingIndex.load(${JSON.stringify(forgedPath)});
index.search({ id: 'item-1' }, { k: 5 });
console.log(index.approximateFrom);`;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(child.signal, null, `${name}: killed by ${child.signal}`);
      assert.equal(child.status, 0, `${name}: ${child.stderr}`);
      assert.equal(child.stdout.trim(), 'built', name);
    }
  });

  it('a newer, older, corrupt, truncated or foreign file is a ContrastiveError naming the file', async () => {
    const bytes = await readFile(path);
    const variant = async (name: string, change: (b: Buffer) => Buffer) => {
      const p = join(dir, name);
      await writeFile(p, change(Buffer.from(bytes)));
      return p;
    };
    const rejects = async (p: string, pattern: RegExp) =>
      assert.rejects(EmbeddingIndex.load(p), (e: unknown) => {
        assert.ok(e instanceof ContrastiveError, String(e));
        assert.ok(e.message.includes(p), e.message);
        assert.match(e.message, pattern);
        return true;
      });
    const version = (v: number) => (b: Buffer) => {
      b.writeUInt32LE(v, 8);
      return b;
    };
    await rejects(
      await variant('newer.index', version(2)),
      /format version 2, newer than this tfjs-contrastive reads \(1\)/,
    );
    await rejects(await variant('older.index', version(0)), /format version 0, older than .* rebuild it/);
    await rejects(
      await variant('flipped.index', (b) => {
        b[b.length - 3] ^= 0x40;
        return b;
      }),
      /is corrupt: its SHA-256 checksum does not match/,
    );
    await rejects(await variant('short.index', (b) => b.subarray(0, b.length - 8)), /is corrupt/);
    await rejects(
      await variant('foreign.index', () => Buffer.from('{"not": "an index"}')),
      /is not a tfjs-contrastive index file/,
    );
    await rejects(join(dir, 'missing.index'), /cannot read .*ENOENT/);
  });

  it('an index holding NaN, infinite or all-zero rows under a valid checksum is refused on load, naming the file and row', async () => {
    for (const [value, pattern] of [
      [Number.NaN, /row 4 \(item "item-4"\) holds NaN at column 2/],
      [Number.POSITIVE_INFINITY, /row 4 \(item "item-4"\) holds Infinity at column 2/],
      [0, /row 4 \(item "item-4"\) is all zeros/],
    ] as const) {
      const snapshot = index.snapshot();
      if (value === 0) snapshot.vectors.fill(0, 4 * 5, 5 * 5);
      else snapshot.vectors[4 * 5 + 2] = value;
      const forged = join(dir, 'forged.index');
      // encodeIndexFile recomputes the checksum: the file is intact, its contents are not
      await writeFile(forged, encodeIndexFile(snapshot));
      const error = await EmbeddingIndex.load(forged).then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(error instanceof ContrastiveError, String(error));
      assert.match(
        error.message,
        new RegExp(`^EmbeddingIndex\\.load: ${forged.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `),
      );
      assert.match(error.message, pattern);
      assert.equal(error.message.split('\n').length, 1);
    }
  });

  it('an index remembers the nodes its model never saw in training', async () => {
    const grown = LabelTree.fromPaths(
      [...tree.classes(2).map((_, leaf) => tree.path(2, leaf)), ['Goods', 'Bags', 'Tote']],
      {
        levelNames: tree.levelNames,
      },
    );
    const withNew = EmbeddingIndex.create({
      tree: grown,
      dim: 2,
      unseen: [
        ['Goods', 'Bags'],
        ['Goods', 'Bags', 'Tote'],
      ],
    });
    withNew.add([{ id: 'a', label: 'Goods/Bags/Tote' }], [[1, 0]]);
    const file = join(dir, 'unseen.index');
    await withNew.save(file);
    const loaded = await EmbeddingIndex.load(file);
    assert.deepEqual(loaded.unseenNodes, [
      ['Goods', 'Bags'],
      ['Goods', 'Bags', 'Tote'],
    ]);
    assert.ok(loaded.isUnseen(['Goods', 'Bags', 'Tote']));
    assert.ok(!loaded.isUnseen(['Goods', 'Shoes']));
    assert.throws(
      () => EmbeddingIndex.create({ tree, dim: 2, unseen: [['Toys']] }),
      /unseen must list nodes of the tree/,
    );
  });
});
