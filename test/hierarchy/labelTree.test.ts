import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ContrastiveError } from '../../src/errors.js';
import { closestNames, editDistance } from '../../src/hierarchy/closest.js';
import { LabelTree, type LabelTreeJSON } from '../../src/hierarchy/index.js';

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
    assert.equal(tree.numLevels, 3);
    assert.deepEqual(tree.levelSizes, [2, 4, 5]);
    assert.equal(tree.numClasses(), 5);
    assert.equal(tree.numClasses(0), 2);
    const rows = tree.encode(PATHS);
    assert.deepEqual(Array.from(rows), [0, 0, 0, 0, 1, 1, 0, 0, 2, 1, 2, 3, 1, 3, 4]);
    assert.deepEqual(tree.decode(rows), PATHS);
    assert.deepEqual(tree.decodeRows(rows.subarray(0, 3)), [['Clothes', 'Tops', 'T-shirt']]);
    assert.deepEqual(tree.classes(1), ['Tops', 'Bottoms', 'Shoes', 'Bags']);
    assert.deepEqual(tree.path(2, 3), ['Goods', 'Shoes', 'Sneaker']);
    assert.deepEqual(tree.path(1, 2), ['Goods', 'Shoes']);
    assert.deepEqual(tree.row(2), [0, 0, 2]);
    assert.deepEqual(Array.from(tree.leafRows()), Array.from(rows));
    assert.equal(tree.parent(2, 2), 0);
    assert.equal(tree.parent(0, 1), -1);
    assert.deepEqual(tree.children(0, 0), [0, 1]);
    assert.deepEqual(tree.children(1, 0), [0, 2]);
    assert.deepEqual(tree.children(2, 0), []);
    // segments work as well as strings, and duplicates are fine
    assert.deepEqual(
      Array.from(tree.encode([['Goods', 'Bags', 'Bag'], 'Goods/Bags/Bag'])),
      [1, 3, 4, 1, 3, 4],
    );
  });

  it('same-named children of different parents get different ids (no wrong shared prefix)', () => {
    const tree = LabelTree.fromPaths(['A/Other/x', 'B/Other/y', 'A/Misc/x2'], { allowSharedNames: true });
    const rows = tree.encode(['A/Other/x', 'B/Other/y']);
    assert.deepEqual(Array.from(rows), [0, 0, 0, 1, 1, 1]);
    assert.equal(tree.lcaDepth(rows.subarray(0, 3), rows.subarray(3)), 0);
    assert.deepEqual(tree.classes(1), ['Other', 'Other', 'Misc']);
  });

  it('property: rows share a prefix of length k exactly when the paths share k segments', () => {
    const segment = fc.constantFrom('a', 'b', 'c');
    const path = fc.tuple(segment, segment, segment).map((s) => s.join('/'));
    fc.assert(
      fc.property(fc.array(path, { minLength: 1, maxLength: 20 }), (paths) => {
        const tree = LabelTree.fromPaths(paths, { allowSharedNames: true });
        const rows = tree.encode(paths);
        assert.deepEqual(tree.decode(rows), paths);
        for (let i = 0; i < paths.length; i++) {
          for (let j = 0; j < paths.length; j++) {
            const a = paths[i].split('/');
            const b = paths[j].split('/');
            let shared = 0;
            while (shared < 3 && a[shared] === b[shared]) shared++;
            assert.equal(
              tree.lcaDepth(rows.subarray(i * 3, i * 3 + 3), rows.subarray(j * 3, j * 3 + 3)),
              shared,
            );
          }
        }
      }),
      { seed: 4, numRuns: 100 },
    );
  });

  it('gives the depth and height of the lowest common ancestor, and the leaf cost matrix', () => {
    const tree = LabelTree.fromPaths(PATHS);
    const [tshirt, trouser, shirt, sneaker] = [0, 1, 2, 3].map((i) => tree.row(i));
    assert.equal(tree.lcaHeight(tshirt, tshirt), 0);
    assert.equal(tree.lcaHeight(tshirt, shirt), 1);
    assert.equal(tree.lcaHeight(tshirt, trouser), 2);
    assert.equal(tree.lcaHeight(tshirt, sneaker), 3);
    assert.equal(tree.lcaDepth(tshirt, shirt), 2);
    assert.equal(tree.lcaDepth(tshirt, sneaker), 0);
    const heights = tree.leafLcaHeights();
    assert.deepEqual(Array.from(heights.subarray(0, 5)), [0, 2, 1, 3, 3]);
    assert.equal(heights[3 * 5 + 4], 2);
    fails(() => tree.lcaDepth([0, 0], [0, 0, 0]), /lcaDepth: rows must have 3 columns, but got 2 and 3/);
  });

  it('round-trips through JSON (serialised and nested), columns and a custom separator', () => {
    const tree = LabelTree.fromPaths(PATHS, { levelNames: ['g', 'f', 'c'] });
    const again = LabelTree.fromSerialized(JSON.parse(JSON.stringify(tree)));
    assert.deepEqual(Array.from(again.encode(PATHS)), Array.from(tree.encode(PATHS)));
    assert.deepEqual(again.levelNames, ['g', 'f', 'c']);
    assert.deepEqual(LabelTree.fromJSON(JSON.stringify(tree)).toJSON(), tree.toJSON());
    const nestedForm = {
      Clothes: { Tops: ['T-shirt', 'Shirt'], Bottoms: ['Trouser'] },
      Goods: { Shoes: ['Sneaker'], Bags: { Bag: null } },
    };
    const nested = LabelTree.fromNested(nestedForm);
    assert.deepEqual(nested.decode(nested.encode(['Clothes/Bottoms/Trouser'])), ['Clothes/Bottoms/Trouser']);
    assert.deepEqual(LabelTree.fromJSON(nestedForm).toNested(), {
      Clothes: { Tops: ['T-shirt', 'Shirt'], Bottoms: ['Trouser'] },
      Goods: { Shoes: ['Sneaker'], Bags: ['Bag'] },
    });
    const cols = LabelTree.fromColumns([
      ['A', 'A', 'B'],
      ['x', 'y', 'z'],
    ]);
    assert.deepEqual(Array.from(cols.encode(['B/z', 'A/y'])), [1, 2, 0, 1]);
    const piped = LabelTree.fromPaths(['Clothes > Tops', 'Goods > Bags'], { separator: '>' });
    assert.deepEqual(Array.from(piped.encode(['Goods>Bags'])), [1, 1]);
    assert.deepEqual(piped.decode([1, 1]), ['Goods>Bags']);
    const reread = LabelTree.fromSerialized(piped.toJSON());
    assert.equal(reread.separator, '>');
    // files written before the separator was saved read as '/'
    const { separator: _, ...old } = tree.toJSON();
    assert.equal(LabelTree.fromSerialized(old as LabelTreeJSON).separator, '/');
  });

  it('pads short paths only when asked', () => {
    fails(
      () => LabelTree.fromPaths(['A/b/c', 'B/d']),
      /path 1 must have 3 levels like path 0 \("A\/b\/c"\), but got 2 \("B\/d"\); pass padToDepth: 'repeat-leaf'/,
    );
    const tree = LabelTree.fromPaths(['A/b/c', 'B/d'], { padToDepth: 'repeat-leaf' });
    assert.deepEqual(tree.path(2, 1), ['B', 'd', 'd']);
    assert.deepEqual(LabelTree.fromPaths(['A/b/c', 'B/d'], { pad: 'repeat-leaf' }).toJSON(), tree.toJSON());
    fails(
      () => tree.encode(['B/d']),
      /path 0 must have 3 levels like the tree, but got 2 \("B\/d"\); pass padToDepth/,
    );
    assert.deepEqual(Array.from(tree.encode(['B/d'], { padToDepth: 'repeat-leaf' })), [1, 1, 1]);
  });

  it('rejects a node with two parents, empty segments and bad options', () => {
    fails(
      () => LabelTree.fromPaths(['Clothes/Tops/Shirt', 'Clothes/Bottoms/Shirt']),
      /fromPaths: node "Shirt" at level 2 must have one parent, but got two: "Clothes\/Tops" and "Clothes\/Bottoms" \(path 1\); fix the data or pass allowSharedNames: true \(the CLI's --allow-shared-names\)\./,
    );
    fails(
      () => LabelTree.fromPaths(['A//c']),
      /fromPaths: path 0 must have a non-empty name at every level, but got "A\/\/c" \(level 1 is empty\)\./,
    );
    fails(() => LabelTree.fromPaths([['A', ' ']]), /path 0 must have a non-empty name at every level/);
    fails(
      () => LabelTree.fromPaths([]),
      /fromPaths: paths must hold at least one label path, but got none\./,
    );
    fails(
      () => LabelTree.fromPaths(['a'], { separator: '' }),
      /separator must be a non-empty string, but got ""/,
    );
    fails(
      () => LabelTree.fromPaths(['a/b'], { levelNames: ['x'] }),
      /levelNames must have 2 entries \(one per level\), but got 1/,
    );
    fails(
      () => LabelTree.fromColumns([['a', 'b'], ['x']]),
      /fromColumns: column 1 must have 2 rows like column 0, but got 1\./,
    );
    fails(() => LabelTree.fromNested({}), /fromNested: the tree must have at least one child, but got \{\}/);
    fails(
      () => LabelTree.fromNested({ A: 3 } as never),
      /"A" must be an object, an array of names or null, but got 3/,
    );
    fails(() => LabelTree.fromNested({ A: ['x'], B: null }), /path 1 must have 2 levels like path 0/);
  });

  it('rejects unknown labels, naming the known ones there and the closest ones', () => {
    const tree = LabelTree.fromPaths(PATHS, { levelNames: ['group', 'family', 'class'] });
    fails(
      () => tree.encode(['Clothes/Tops/Sock']),
      /^LabelTree\.encode: path 0 \("Clothes\/Tops\/Sock"\) must name a known class \(level 2\) under "Clothes\/Tops", but got unknown label "Sock"; known there: T-shirt, Shirt\.$/,
    );
    fails(
      () => tree.encode(['Clothes/Tops/Trouser', 'Clothes/Tops/shirt']),
      /path 0 .* unknown label "Trouser"; known there: T-shirt, Shirt; closest known: "Clothes\/Bottoms\/Trouser"\./,
    );
    fails(
      () => tree.encode(['Clothes/Tops/tshirt']),
      /closest known: "Clothes\/Tops\/T-shirt", "Clothes\/Tops\/Shirt"\./,
    );
    fails(
      () => tree.encode(['Clotes/Tops/Shirt']),
      /at the top level, but got unknown label "Clotes"; known there: Clothes, Goods; closest known: "Clothes"\./,
    );
    fails(
      () => tree.encode(['Clothes/Tops']),
      /path 0 must have 3 levels like the tree, but got 2 \("Clothes\/Tops"\)/,
    );
  });

  it('decode rejects rows that are not a leaf and its ancestors', () => {
    const tree = LabelTree.fromPaths(PATHS);
    fails(
      () => tree.decode([0, 0]),
      /decode: rows must hold N x 3 values \(one column per level\), but got 2 values\./,
    );
    fails(() => tree.decode([0, 0, 9]), /decode: row 0 must end in a leaf id in \[0, 4\], but got 9\./);
    fails(
      () => tree.decode([0, 0, 0, 1, 0, 0]),
      /row 1 must hold the ancestors of leaf 0 \(0,0,0\), but got 1,0,0\./,
    );
    fails(() => tree.path(3, 0), /LabelTree\.path: level must be an integer in \[0, 2\], but got 3\./);
    fails(() => tree.row(7), /LabelTree\.row: id must be a node of level 2 in \[0, 4\], but got 7\./);
  });

  it('fromSerialized and fromJSON reject malformed trees', () => {
    const good = LabelTree.fromPaths(PATHS).toJSON();
    const edit = (f: (j: LabelTreeJSON) => void) => {
      const j = JSON.parse(JSON.stringify(good)) as LabelTreeJSON;
      f(j);
      return j;
    };
    fails(
      () => LabelTree.fromSerialized({} as never),
      /fromSerialized: json must have format 'tfjs-contrastive\/label-tree@1', but got \{\}/,
    );
    fails(() => LabelTree.fromJSON('{"a": '), /fromJSON: json must be valid JSON, but parsing failed/);
    fails(
      () => LabelTree.fromJSON('[1]'),
      /fromJSON: json must be a serialised tree or a nested object, but got \[1\]/,
    );
    fails(() => LabelTree.fromJSON({ format: 'x', nodes: [] } as never), /must have format/);
    fails(
      () =>
        LabelTree.fromSerialized(
          edit((j) => {
            j.nodes = [];
          }),
        ),
      /nodes must be a non-empty array of non-empty levels/,
    );
    fails(
      () =>
        LabelTree.fromSerialized(
          edit((j) => {
            j.levelNames.pop();
          }),
        ),
      /levelNames must be 3 strings \(one per level\)/,
    );
    fails(
      () =>
        LabelTree.fromSerialized(
          edit((j) => {
            j.nodes[2][2].parent = 9;
          }),
        ),
      /node 2 at level 2 must have a parent in \[0, 3\], but got 9\./,
    );
    fails(
      () =>
        LabelTree.fromSerialized(
          edit((j) => {
            j.nodes[0][0].parent = 0;
          }),
        ),
      /node 0 at level 0 must have a parent in \[-1, -1\], but got 0\./,
    );
    fails(
      () =>
        LabelTree.fromSerialized(
          edit((j) => {
            j.nodes[2][0].name = '';
          }),
        ),
      /node 0 at level 2 must have a non-empty name, but got/,
    );
    fails(
      () =>
        LabelTree.fromSerialized(
          edit((j) => {
            j.nodes[2][2] = { ...j.nodes[2][0] };
          }),
        ),
      /node 2 at level 2 \("T-shirt"\) must be unique under its parent/,
    );
    fails(
      () =>
        LabelTree.fromSerialized(
          edit((j) => {
            j.nodes[1].push({ name: 'Empty', parent: 0 });
          }),
        ),
      /node 4 at level 1 \("Empty"\) must have children \(every leaf is at level 2\), but has none\./,
    );
  });
});

describe('closestNames', () => {
  it('ranks by edit distance, case-insensitively, and keeps only close names', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('Shirt', 'shirt'), 0);
    const names = ['Shirt', 'T-shirt', 'Trouser', 'Bag'].map((name) => ({ name }));
    assert.deepEqual(
      closestNames('shrt', names, 3).map((c) => c.name),
      ['Shirt'],
    );
    assert.deepEqual(
      closestNames('SHIRT', names, 3).map((c) => c.name),
      ['Shirt', 'T-shirt'],
    );
    assert.deepEqual(closestNames('zzz', names, 3), []);
  });
});

describe('LabelTree partial labels', () => {
  it("encodes paths shorter than the tree as -1 below their prefix with padToDepth: 'unknown'", () => {
    const tree = LabelTree.fromPaths(PATHS);
    const rows = tree.encode(['Clothes/Tops', 'Goods', 'Goods/Bags/Bag', 'Clothes/Tops'], {
      padToDepth: 'unknown',
    });
    assert.deepEqual(Array.from(rows), [0, 0, -1, 1, -1, -1, 1, 3, 4, 0, 0, -1]);
    assert.deepEqual(tree.decode(rows), ['Clothes/Tops', 'Goods', 'Goods/Bags/Bag', 'Clothes/Tops']);
    // the default is unchanged: short paths are an error naming both remedies
    fails(() => tree.encode(['Clothes/Tops']), /path 0 must have 3 levels.*'repeat-leaf'.*'unknown'/);
    fails(() => tree.encode(['Clothes/Hats'], { padToDepth: 'unknown' }), /unknown label "Hats"/);
  });

  it('builds a tree from full and partial paths; a partial path must lie on a full one', () => {
    const tree = LabelTree.fromPaths(['Clothes/Tops', ...PATHS, 'Goods'], { padToDepth: 'unknown' });
    assert.deepEqual(tree.levelSizes, [2, 4, 5]);
    assert.deepEqual(tree.classes(0), ['Clothes', 'Goods']);
    fails(
      () => LabelTree.fromPaths([...PATHS, 'Goods/Toys'], { padToDepth: 'unknown' }),
      /path 5 \("Goods\/Toys"\) is a partial label \(2 of 3 levels\) and must be a prefix of some full-depth path, but no full path passes through "Goods\/Toys"/,
    );
    fails(() => tree.decode([-1, -1, -1]), /row 0 must know at least its coarsest level/);
    fails(
      () => tree.decode([1, 0, -1]),
      /row 0 must hold the ancestors of node 0 at level 1, but got 1,0,-1/,
    );
  });
});
