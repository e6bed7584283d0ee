import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadTrainingData } from '../../src/data/dataset.js';
import {
  csvFields,
  featureTableLabels,
  readFeatureTable,
  readLabelPaths,
} from '../../src/data/featureTable.js';
import { readNpyMatrix, writeNpy } from '../../src/data/npy.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { Rng } from '../../src/random.js';
import { train } from '../../src/run/train.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { quietProgress } from '../helpers/train.js';

const fails = (p: Promise<unknown>, pattern: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));

/**
 * The bytes of a `.npy` file: `descr` and `shape` go into the header as written; values are
 * written with `itemBytes` per element in the given byte order.
 */
function npyBytes(
  descr: string,
  shape: string,
  values: readonly number[],
  itemBytes: 4 | 8,
  littleEndian: boolean,
  fortran = false,
  version = 1,
  headerText?: string,
): Uint8Array {
  let header =
    headerText ??
    `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  const preamble = version === 1 ? 10 : 12;
  header += `${' '.repeat((64 - ((preamble + header.length + 1) % 64)) % 64)}\n`;
  const out = new Uint8Array(preamble + header.length + values.length * itemBytes);
  const view = new DataView(out.buffer);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), version, 0]);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), preamble);
  values.forEach((v, i) => {
    const at = preamble + header.length + i * itemBytes;
    if (descr.endsWith('i4')) view.setInt32(at, v, littleEndian);
    else if (itemBytes === 4) view.setFloat32(at, v, littleEndian);
    else view.setFloat64(at, v, littleEndian);
  });
  return out;
}

describe('feature tables', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'contrastive-tables-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads CSV (path column or level columns, quoted fields), JSONL and .npy + labels', async () => {
    const csv = join(dir, 'items.csv');
    await writeFile(csv, 'id,label,f1,f2\n1,Clothes/Tops/T-shirt,0.5,1\n2,"Goods/Shoes/Sneaker",-1,2e-3\n');
    const a = await readFeatureTable(csv, { featureColumns: ['f1', 'f2'] });
    assert.deepEqual([a.numRows, a.dim], [2, 2]);
    assert.deepEqual(Array.from(a.features), [0.5, 1, -1, Math.fround(2e-3)]);
    assert.deepEqual(a.paths[1], ['Goods', 'Shoes', 'Sneaker']);
    const levels = join(dir, 'levels.csv');
    await writeFile(levels, 'group,family,x\nClothes,Tops,3\nGoods,Bags,4\n');
    const b = await readFeatureTable(levels, { levelColumns: ['group', 'family'] });
    assert.deepEqual(b.paths, [
      ['Clothes', 'Tops'],
      ['Goods', 'Bags'],
    ]);
    assert.deepEqual(Array.from(b.features), [3, 4]);
    const jsonl = join(dir, 'items.jsonl');
    await writeFile(jsonl, '{"features":[1,2,3],"label":"A/b"}\n\n{"features":[4,5,6],"label":["B","c"]}\n');
    const c = await readFeatureTable(jsonl);
    assert.deepEqual(c.paths, [
      ['A', 'b'],
      ['B', 'c'],
    ]);
    const npy = join(dir, 'x.npy');
    await writeNpy(npy, { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
    await writeFile(join(dir, 'x.txt'), 'A/b\nB/c\n\n');
    const d = await readFeatureTable(npy, { labelsPath: join(dir, 'x.txt') });
    assert.deepEqual(Array.from(d.features), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([d.numRows, d.dim], [2, 3]);
  });

  it('CSV: delimiters, quotes, byte-order mark, CRLF; JSONL: custom keys and level keys', async () => {
    const csv = join(dir, 'semi.csv');
    await writeFile(csv, '\ufeffpath;f1;f2\r\n"Clothes;Wear > Tops";1;2\r\n"Goods > ""Bags""";3;4\r\n');
    const t = await readFeatureTable(csv, { delimiter: ';', labelColumn: 'path', separator: '>' });
    assert.deepEqual(t.paths, [
      ['Clothes;Wear', 'Tops'],
      ['Goods', '"Bags"'],
    ]);
    assert.deepEqual(Array.from(t.features), [1, 2, 3, 4]);
    assert.deepEqual(csvFields('a,"b,c",d'), ['a', 'b,c', 'd']);
    const jl = join(dir, 'keys.jsonl');
    await writeFile(
      jl,
      '{"emb":[1,2],"cat":"A|b","g":"A","c":3}\n{"emb":[3,4],"cat":"B|c","g":"B","c":"x"}\n',
    );
    const j = await readFeatureTable(jl, { featuresKey: 'emb', labelKey: 'cat', separator: '|' });
    assert.deepEqual(j.paths, [
      ['A', 'b'],
      ['B', 'c'],
    ]);
    const k = await readFeatureTable(jl, { featuresKey: 'emb', levelKeys: ['g', 'c'] });
    assert.deepEqual(k.paths, [
      ['A', '3'],
      ['B', 'x'],
    ]);
    const asCsv = join(dir, 'table.txt');
    await writeFile(asCsv, 'label,f\nA/b,1\n');
    assert.equal((await readFeatureTable(asCsv, { format: 'csv' })).numRows, 1);
  });

  it('.npy: float64, big-endian, Fortran order, version 2 headers and a CSV labels file', async () => {
    const values = [1.5, -2, 3, 4, 5, 6.25];
    await writeFile(join(dir, 'f8.npy'), npyBytes('<f8', '(2, 3)', values, 8, true));
    await writeFile(join(dir, 'be.npy'), npyBytes('>f4', '(2, 3)', values, 4, false));
    // Fortran order: the file holds the columns one after another
    await writeFile(join(dir, 'fo.npy'), npyBytes('<f4', '(2, 3)', [1.5, 4, -2, 5, 3, 6.25], 4, true, true));
    await writeFile(join(dir, 'v2.npy'), npyBytes('<f4', '(2, 3)', values, 4, true, false, 2));
    await writeFile(join(dir, 'labels.csv'), 'id,group,cls\n1,A,b\n2,B,c\n');
    for (const file of ['f8.npy', 'be.npy', 'fo.npy', 'v2.npy']) {
      const t = await readFeatureTable(join(dir, file), {
        labelsPath: join(dir, 'labels.csv'),
        levelColumns: ['group', 'cls'],
      });
      assert.deepEqual(Array.from(t.features), values, file);
      assert.deepEqual(t.paths, [
        ['A', 'b'],
        ['B', 'c'],
      ]);
    }
    await writeFile(join(dir, 'paths.csv'), 'label\nA/b\nB/c\n');
    assert.deepEqual(await readLabelPaths(join(dir, 'paths.csv')), [
      ['A', 'b'],
      ['B', 'c'],
    ]);
    const big = await readNpyMatrix(join(dir, 'f8.npy'));
    assert.equal(big.descr, '<f8');
    // a float64 file larger than the 1 MiB conversion buffer
    const n = 300_000;
    const many = Array.from({ length: n }, (_, i) => i / 7);
    await writeFile(join(dir, 'many.npy'), npyBytes('<f8', `(${n / 2}, 2)`, many, 8, true));
    const m = await readNpyMatrix(join(dir, 'many.npy'));
    assert.deepEqual(m.shape, [n / 2, 2]);
    assert.equal(m.data[n - 1], Math.fround((n - 1) / 7));
    assert.equal(m.data[131072], Math.fround(131072 / 7));
  });

  it('featureTableLabels builds the tree and [N, L] rows, or encodes with a given tree', async () => {
    const table = {
      paths: [
        ['A', 'x'],
        ['B', 'y'],
        ['A', 'z'],
        ['A', 'x'],
      ],
    };
    const { tree, labels } = featureTableLabels(table, { levelNames: ['group', 'class'] });
    assert.deepEqual(Array.from(labels), [0, 0, 1, 1, 0, 2, 0, 0]);
    assert.deepEqual(tree.levelNames, ['group', 'class']);
    const other = featureTableLabels({ paths: [['B', 'y']] }, { tree });
    assert.equal(other.tree, tree);
    assert.deepEqual(Array.from(other.labels), [1, 1]);
    const padded = featureTableLabels({ paths: [['A', 'x', 'p'], ['B']] }, { padToDepth: 'repeat-leaf' });
    assert.deepEqual(padded.tree.path(2, 1), ['B', 'B', 'B']);
    assert.throws(() => featureTableLabels({ paths: [['Q', 'x']] }, { tree }), /unknown label "Q"/);
  });

  it('bad rows get errors with file, line and field', async () => {
    const bad = join(dir, 'bad.csv');
    await writeFile(bad, 'label,f1\nA/b,1\nB/c,x\n');
    await fails(
      readFeatureTable(bad),
      /^readCsv: bad\.csv line 3, column "f1": expected a finite number, but got "x"\.$/,
    );
    await writeFile(bad, 'label,f1\nA/b,1\nB/c,\n');
    await fails(
      readFeatureTable(bad),
      /^readCsv: bad\.csv line 3, column "f1": expected a finite number, but got ""\.$/,
    );
    await writeFile(bad, 'label,f1\nA/b,1\nB/c,Infinity\n');
    await fails(readFeatureTable(bad), /line 3, column "f1": expected a finite number, but got "Infinity"/);
    await writeFile(bad, 'id,path,f1\n1,A/b,1\n2,,2\n');
    await fails(
      readFeatureTable(bad, { labelColumn: 'path' }),
      /^readCsv: bad\.csv line 3, column "path": expected a label path like "Clothes\/Tops", but got ""\.$/,
    );
    await writeFile(bad, 'label,f1\nA//b,1\n');
    await fails(
      readFeatureTable(bad),
      /line 2, column "label": expected a label path like "Clothes\/Tops", but got "A\/\/b"/,
    );
    await writeFile(bad, 'g,c,f1\nA,b,1\nB, ,2\n');
    await fails(
      readFeatureTable(bad, { levelColumns: ['g', 'c'] }),
      /^readCsv: bad\.csv line 3, column "c": expected a label, but got ""\.$/,
    );
    await writeFile(bad, 'label,f1,f2\nA/b,1,2\nA/c,1\n');
    await fails(
      readFeatureTable(bad),
      /^readCsv: bad\.csv line 3: expected 3 fields like the header, but got 2\.$/,
    );
    await writeFile(bad, 'name,f1\n');
    await fails(
      readFeatureTable(bad),
      /^readCsv: bad\.csv line 1: expected a column "label" in the header, but got "name", "f1"\.$/,
    );
    await writeFile(bad, 'label\nA/b\n');
    await fails(
      readFeatureTable(bad),
      /line 1: expected at least one feature column besides the label, but got only "label"/,
    );
    await writeFile(bad, '\n\n');
    await fails(readFeatureTable(bad), /^readCsv: bad\.csv must start with a header line, but is empty\.$/);
    await writeFile(bad, 'label,f1\n');
    await fails(
      readFeatureTable(bad),
      /^readFeatureTable: bad\.csv must hold at least one row, but holds none\.$/,
    );
    await fails(
      readFeatureTable(bad, { format: 'xml' as never }),
      /format must be 'csv', 'jsonl' or 'npy', but got "xml"/,
    );

    const jl = join(dir, 'bad.jsonl');
    await writeFile(jl, '{"features":[1,2],"label":"A/b"}\n{"features":[1],"label":"A/c"}\n');
    await fails(
      readFeatureTable(jl),
      /^readJsonl: bad\.jsonl line 2: expected 2 features like the first row, but got 1\.$/,
    );
    await writeFile(jl, '{"features":[1,"2"],"label":"A/b"}\n');
    await fails(
      readFeatureTable(jl),
      /^readJsonl: bad\.jsonl line 1, field "features": expected an array of finite numbers, but element 1 is "2"\.$/,
    );
    await writeFile(jl, '{"label":"A/b"}\n');
    await fails(
      readFeatureTable(jl),
      /line 1, field "features": expected an array of finite numbers, but got undefined/,
    );
    await writeFile(jl, '{"features":[],"label":"A/b"}\n');
    await fails(readFeatureTable(jl), /line 1: expected at least one feature, but the row has none/);
    await writeFile(jl, '{"features":[1],"label":""}\n');
    await fails(
      readFeatureTable(jl),
      /line 1, field "label": expected a label path like "Clothes\/Tops", but got ""/,
    );
    await writeFile(jl, '{"features":[1],"label":7}\n');
    await fails(
      readFeatureTable(jl),
      /field "label": expected a label path like "Clothes\/Tops" or an array of names, but got 7/,
    );
    await writeFile(jl, '{"features":[1],"g":"A"}\n');
    await fails(
      readFeatureTable(jl, { levelKeys: ['g', 'c'] }),
      /line 1, field "c": expected a label, but got undefined/,
    );
    await writeFile(jl, '{"features":[1,2]\n');
    await fails(
      readFeatureTable(jl),
      /^readJsonl: bad\.jsonl line 1: expected a JSON object, but the line is not valid JSON/,
    );
    await writeFile(jl, '[1, 2]\n');
    await fails(readFeatureTable(jl), /line 1: expected a JSON object, but got \[1,2\]/);
    await writeFile(join(dir, 'empty.jsonl'), '\n');
    await fails(
      readFeatureTable(join(dir, 'empty.jsonl')),
      /empty\.jsonl must hold at least one row, but holds none/,
    );
    await fails(
      readFeatureTable(join(dir, 'missing.csv')),
      /^readCsv: cannot read .*missing\.csv: ENOENT\.$/,
    );
  });

  it('bad .npy files and labels files get errors naming the file', async () => {
    await writeNpy(join(dir, 'y.npy'), { shape: [3, 1], data: Float32Array.from([1, 2, 3]) });
    await writeFile(join(dir, 'y.txt'), 'A/b\nA/c\n');
    const labels = { labelsPath: join(dir, 'y.txt') };
    await fails(
      readFeatureTable(join(dir, 'y.npy'), labels),
      /^readFeatureTable: y\.npy has 3 rows but y\.txt has 2 labels; they must match\.$/,
    );
    await fails(
      readFeatureTable(join(dir, 'y.npy')),
      /labelsPath \(the CLI's --labels\) must name the labels of y\.npy .*, but got none\./,
    );
    await writeFile(join(dir, 'gap.txt'), 'A/b\n\nA/c\n');
    await fails(
      readFeatureTable(join(dir, 'y.npy'), { labelsPath: join(dir, 'gap.txt') }),
      /^readLabels: gap\.txt line 2: expected a label path like "Clothes\/Tops", but got ""\.$/,
    );
    await writeFile(join(dir, 'z.npy'), 'not numpy at all');
    await fails(
      readFeatureTable(join(dir, 'z.npy'), labels),
      /^readNpy: z\.npy has a bad \.npy header: expected the magic string "\\x93NUMPY", but got "not nu"\.$/,
    );
    await writeFile(
      join(dir, 'h.npy'),
      npyBytes('<f4', '(2, 3)', [1, 2, 3, 4, 5, 6], 4, true).subarray(0, 30),
    );
    await fails(
      readFeatureTable(join(dir, 'h.npy'), labels),
      /h\.npy has a bad \.npy header: it claims \d+ bytes, but the file has only 20/,
    );
    await writeFile(
      join(dir, 'ns.npy'),
      npyBytes('<f4', '(2, 3)', [], 4, true, false, 1, "{'descr': '<f4', 'fortran_order': False, }"),
    );
    await fails(
      readFeatureTable(join(dir, 'ns.npy'), labels),
      /ns\.npy has a bad \.npy header: expected a dict with 'descr', 'fortran_order' and 'shape', but got/,
    );
    await writeFile(join(dir, 'i4.npy'), npyBytes('<i4', '(3, 1)', [1, 2, 3], 4, true));
    await fails(
      readFeatureTable(join(dir, 'i4.npy'), labels),
      /^readNpy: i4\.npy must hold float32 \('<f4'\) or float64 \('<f8'\) values, but holds dtype '<i4'; convert it with arr\.astype\(np\.float32\)\.$/,
    );
    await writeFile(join(dir, 't.npy'), npyBytes('<f4', '(3, 1)', [1, 2], 4, true));
    await fails(
      readFeatureTable(join(dir, 't.npy'), labels),
      /^readNpy: t\.npy is truncated: shape \(3, 1\) of '<f4' needs 12 bytes of data, but only 8 follow the header\.$/,
    );
    await writeFile(join(dir, 'r3.npy'), npyBytes('<f4', '(3,)', [1, 2, 3], 4, true));
    await fails(
      readFeatureTable(join(dir, 'r3.npy'), labels),
      /^readNpy: r3\.npy must be a matrix \[N, D\], but has shape \(3\)\.$/,
    );
    await writeFile(join(dir, 'y3.txt'), 'A/b\nA/c\nA/d\n');
    await writeFile(join(dir, 'nan.npy'), npyBytes('<f4', '(3, 1)', [1, Number.NaN, 3], 4, true));
    await fails(
      readFeatureTable(join(dir, 'nan.npy'), { labelsPath: join(dir, 'y3.txt') }),
      /^readNpy: nan\.npy row 1, column 0: expected a finite number, but got NaN\.$/,
    );
    await fails(readNpyMatrix(join(dir, 'none.npy')), /^readNpy: cannot read .*none\.npy: ENOENT\.$/);
  });

  it('a CSV table trains end to end: stratified split, tree from the paths, MLP on features', async () => {
    await useBackend('wasm');
    const rng = new Rng(1);
    const rows = ['label,f1,f2,f3,f4'];
    for (let i = 0; i < 300; i++) {
      const g = rng.int(2);
      const f = rng.int(3);
      const center = [g * 4, f * 2, g + f, 1];
      rows.push([`G${g}/F${g}${f}`, ...center.map((c) => (c + 0.3 * rng.normal()).toFixed(4))].join(','));
    }
    const csv = join(dir, 'train.csv');
    await writeFile(csv, `${rows.join('\n')}\n`);
    const config = await resolveTrainConfig({
      out: join(dir, 'run'),
      data: csv,
      method: 'himulcone',
      epochs: 3,
      batchSize: 32,
      backend: 'wasm',
      embeddingDim: 16,
      projectionDim: 16,
    });
    const data = await loadTrainingData(config);
    assert.equal(data.kind, 'table');
    assert.deepEqual(data.inputShape, [4]);
    assert.equal(data.train.size + data.test.size, 300);
    assert.ok(Math.abs(data.test.size - 60) <= 6);
    assert.deepEqual(data.tree.levelSizes, [2, 6]);
    const result = await train(config, { progress: quietProgress() });
    assert.ok((result.knnAccuracy ?? 0) > 0.8, `kNN accuracy ${result.knnAccuracy}`);
  });
});
