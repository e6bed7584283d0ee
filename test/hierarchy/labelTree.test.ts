import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ContrastiveError } from '../../src/errors.js';
import { LabelTree } from '../../src/hierarchy/index.js';

const PATHS = [
  'Clothes/Tops/T-shirt',
  'Clothes/Bottoms/Trouser',
  'Clothes/Tops/Shirt',
  'Goods/Shoes/Sneaker',
  'Goods/Bags/Bag',
];

const fails = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));

describe('LabelTree', () => {
  it('encodes paths to prefix-consistent rows and decodes them back', () => {
    const tree = LabelTree.fromPaths(PATHS, { levelNames: ['group', 'family', 'class'] });
    assert.equal(tree.depth, 3);
    assert.deepEqual(tree.levelSizes, [2, 4, 5]);
    const rows = tree.encode(PATHS);
    assert.deepEqual(Array.from(rows), [0, 0, 0, 0, 1, 1, 0, 0, 2, 1, 2, 3, 1, 3, 4]);
    assert.deepEqual(tree.decode(rows), PATHS);
    assert.deepEqual(tree.classes(1), ['Tops', 'Bottoms', 'Shoes', 'Bags']);
    assert.deepEqual(tree.path(2, 3), ['Goods', 'Shoes', 'Sneaker']);
    assert.deepEqual(tree.row(2), [0, 0, 2]);
  });

  it('gives the height of the lowest common ancestor', () => {
    const tree = LabelTree.fromPaths(PATHS);
    const [tshirt, trouser, shirt, sneaker] = [0, 1, 2, 3].map((i) => tree.row(i));
    assert.equal(tree.lcaHeight(tshirt, tshirt), 0);
    assert.equal(tree.lcaHeight(tshirt, shirt), 1);
    assert.equal(tree.lcaHeight(tshirt, trouser), 2);
    assert.equal(tree.lcaHeight(tshirt, sneaker), 3);
  });

  it('round-trips through JSON, nested objects and columns', () => {
    const tree = LabelTree.fromPaths(PATHS, { levelNames: ['g', 'f', 'c'] });
    const again = LabelTree.fromJSON(JSON.parse(JSON.stringify(tree)));
    assert.deepEqual(Array.from(again.encode(PATHS)), Array.from(tree.encode(PATHS)));
    assert.deepEqual(again.levelNames, ['g', 'f', 'c']);
    const nested = LabelTree.fromNested({
      Clothes: { Tops: ['T-shirt', 'Shirt'], Bottoms: ['Trouser'] },
      Goods: { Shoes: ['Sneaker'] },
    });
    assert.deepEqual(nested.decode(nested.encode(['Clothes/Bottoms/Trouser'])), ['Clothes/Bottoms/Trouser']);
    const cols = LabelTree.fromColumns([
      ['A', 'A', 'B'],
      ['x', 'y', 'z'],
    ]);
    assert.deepEqual(Array.from(cols.encode(['B/z', 'A/y'])), [1, 2, 0, 1]);
  });

  it('pads short paths only when asked', () => {
    fails(
      () => LabelTree.fromPaths(['A/b/c', 'B/d']),
      /path 1 \("B\/d"\) has 2 levels but others have 3; pass pad: 'repeat-leaf'/,
    );
    const tree = LabelTree.fromPaths(['A/b/c', 'B/d'], { pad: 'repeat-leaf' });
    assert.deepEqual(tree.path(2, 1), ['B', 'd', 'd']);
  });

  it('rejects a node with two parents, empty segments and unknown labels', () => {
    fails(
      () => LabelTree.fromPaths(['Clothes/Tops/Shirt', 'Clothes/Bottoms/Shirt']),
      /node "Shirt" at level 2 has two parents, "Clothes\/Tops" and "Clothes\/Bottoms"/,
    );
    const shared = LabelTree.fromPaths(['A/Other', 'B/Other'], { allowSharedNames: true });
    assert.deepEqual(Array.from(shared.encode(['A/Other', 'B/Other'])), [0, 0, 1, 1]);
    fails(() => LabelTree.fromPaths(['A//c']), /path 0 \("A\/\/c"\) has an empty segment at level 1/);
    const tree = LabelTree.fromPaths(PATHS);
    fails(
      () => tree.encode(['Clothes/Tops/Sock']),
      /unknown label "Sock" at level 2 \(level2\) of path 0 .*known here: T-shirt, Shirt/,
    );
    fails(() => tree.encode(['Clothes/Tops']), /path 0 \("Clothes\/Tops"\) has 2 levels, the tree has 3/);
    fails(() => LabelTree.fromJSON({} as never), /expected an object with format/);
  });
});
