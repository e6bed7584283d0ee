import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeLabelSegment, formatLabelPath, LabelTree, parseLabelPath } from '../../src/hierarchy/index.js';
import { Rng } from '../../src/random.js';

describe('label path escaping', () => {
  it('writes a separator inside a name as \\/ and reads it back', () => {
    assert.equal(formatLabelPath(['Clothes', 'Tops', 'T-shirt/top']), 'Clothes/Tops/T-shirt\\/top');
    assert.deepEqual(parseLabelPath('Clothes/Tops/T-shirt\\/top'), ['Clothes', 'Tops', 'T-shirt/top']);
    // names without the separator or a backslash read and write as before
    assert.equal(formatLabelPath(['Goods', 'Bags', 'Bag']), 'Goods/Bags/Bag');
    assert.deepEqual(parseLabelPath('C:\\data/x'), ['C:\\data', 'x']);
    assert.equal(escapeLabelSegment('a\\'), 'a\\\\');
  });

  it('round-trips any segments, for one- and many-character separators', () => {
    const rng = new Rng(17);
    for (const separator of ['/', ' > ', '\\']) {
      const alphabet = ['a', 'b', '\\', '/', ' ', '>', separator];
      for (let trial = 0; trial < 400; trial++) {
        const segments = Array.from({ length: 1 + rng.int(4) }, () =>
          Array.from({ length: rng.int(6) }, () => alphabet[rng.int(alphabet.length)]).join(''),
        );
        if (separator === '\\') continue; // the escape character itself cannot be the separator
        // several characters: a name ending in the start of the separator (or starting with its
        // end) overlaps it — the one case the rule does not cover (see escapeLabelSegment)
        const overlaps = (x: string) =>
          Array.from({ length: separator.length - 1 }, (_, k) => k + 1).some(
            (k) => x.endsWith(separator.slice(0, k)) || x.startsWith(separator.slice(-k)),
          );
        if (segments.some(overlaps)) continue;
        const text = formatLabelPath(segments, separator);
        assert.deepEqual(parseLabelPath(text, separator), segments, `${JSON.stringify(segments)} → ${text}`);
      }
    }
  });

  it('a LabelTree reads escaped paths and decodes them escaped', () => {
    const tree = LabelTree.fromPaths(['Clothes/Tops/T-shirt\\/top', 'Clothes/Tops/Shirt', 'Goods/Bags/Bag']);
    assert.deepEqual(tree.classes(2), ['T-shirt/top', 'Shirt', 'Bag']);
    const rows = tree.encode(['Clothes/Tops/T-shirt\\/top', ['Goods', 'Bags', 'Bag']]);
    assert.deepEqual(tree.decode(rows), ['Clothes/Tops/T-shirt\\/top', 'Goods/Bags/Bag']);
  });
});
