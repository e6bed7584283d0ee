/** The index file: round trip, and clear errors for newer, older, corrupt and foreign files. */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { LabelTree } from '../../src/hierarchy/labelTree.js';
import { Rng } from '../../src/random.js';
import { EmbeddingIndex } from '../../src/search/index.js';
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
});
