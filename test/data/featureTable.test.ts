import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readFeatureTable } from '../../src/data/featureTable.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { writeNpy } from '../../src/io/npy.js';
import { Rng } from '../../src/random.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { loadTrainingData } from '../../src/train/data.js';
import { train } from '../../src/train/trainer.js';
import { quietProgress } from '../helpers/train.js';

const fails = (p: Promise<unknown>, pattern: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof ContrastiveError && pattern.test(e.message));

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
    const jsonl = join(dir, 'items.jsonl');
    await writeFile(jsonl, '{"features":[1,2,3],"label":"A/b"}\n\n{"features":[4,5,6],"label":["B","c"]}\n');
    const c = await readFeatureTable(jsonl);
    assert.deepEqual(c.paths, [
      ['A', 'b'],
      ['B', 'c'],
    ]);
    const npy = join(dir, 'x.npy');
    await writeNpy(npy, { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
    await writeFile(join(dir, 'x.txt'), 'A/b\nB/c\n');
    const d = await readFeatureTable(npy, { labelsPath: join(dir, 'x.txt') });
    assert.deepEqual(Array.from(d.features), [1, 2, 3, 4, 5, 6]);
  });

  it('bad rows get errors with file, line and field', async () => {
    const bad = join(dir, 'bad.csv');
    await writeFile(bad, 'label,f1\nA/b,1\nB/c,x\n');
    await fails(
      readFeatureTable(bad),
      /^readCsv: bad\.csv line 3, column "f1": expected a finite number, but got "x"\.$/,
    );
    await writeFile(bad, 'label,f1\nA/b,1\n,2\n');
    await fails(
      readFeatureTable(bad),
      /bad\.csv line 3, column "label": expected a label path like "Clothes\/Tops", but got ""/,
    );
    await writeFile(bad, 'label,f1,f2\nA/b,1,2\nA/c,1\n');
    await fails(readFeatureTable(bad), /bad\.csv line 3: expected 3 fields like the header, but got 2/);
    await writeFile(bad, 'name,f1\n');
    await fails(readFeatureTable(bad), /line 1: no column "label" in the header \(name, f1\)/);
    const jl = join(dir, 'bad.jsonl');
    await writeFile(jl, '{"features":[1,2],"label":"A/b"}\n{"features":[1],"label":"A/c"}\n');
    await fails(readFeatureTable(jl), /bad\.jsonl line 2: expected 2 features like the first row, but got 1/);
    await writeFile(jl, '{"features":[1,"2"],"label":"A/b"}\n');
    await fails(readFeatureTable(jl), /line 1, field "features": expected an array of finite numbers/);
    await writeFile(jl, '{"features":[1,2]\n');
    await fails(readFeatureTable(jl), /bad\.jsonl line 1: not valid JSON/);
    await writeFile(join(dir, 'empty.jsonl'), '\n');
    await fails(readFeatureTable(join(dir, 'empty.jsonl')), /holds no rows/);
    await writeNpy(join(dir, 'y.npy'), { shape: [3, 1], data: Float32Array.from([1, 2, 3]) });
    await writeFile(join(dir, 'y.txt'), 'A/b\nA/c\n');
    await fails(
      readFeatureTable(join(dir, 'y.npy'), { labelsPath: join(dir, 'y.txt') }),
      /has 3 rows but y\.txt has 2 labels/,
    );
    await writeFile(join(dir, 'z.npy'), 'not numpy');
    await fails(readFeatureTable(join(dir, 'z.npy'), { labelsPath: join(dir, 'y.txt') }), /not a \.npy file/);
    await fails(readFeatureTable(join(dir, 'missing.csv')), /cannot read .*missing\.csv: ENOENT/);
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
