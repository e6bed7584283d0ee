/** The real CLI on a tiny trained run: embed --data, index, search, predict, dedupe (tables and --json), and their errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { EMBEDDED_FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashionMnist.js';
import { readNpy } from '../../src/data/npy.js';
import { train } from '../../src/run/train.js';
import { EmbeddingIndex } from '../../src/search/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

describe('contrastive index / search / predict / dedupe / embed --data', () => {
  const bin = resolve(REPO_ROOT, 'dist/src/cli/bin.js');
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 300_000 });
  let dir: string;
  let runDir: string;
  let indexPath: string;
  let imagePath: string;
  before(async () => {
    dir = await tempRuns();
    runDir = join(dir, 'run');
    await train(await smallConfig(runDir, { epochs: 1, trainLimit: 256, testLimit: 120 }), {
      progress: quietProgress(),
    });
    indexPath = join(dir, 'catalogue.index');
    const test = await loadFashionMnist({ split: 'test', dataDir: EMBEDDED_FASHION_MNIST_DIR, limit: 1 });
    await mkdir(join(dir, 'query'), { recursive: true });
    imagePath = join(dir, 'query', 'q.png');
    const raw = Buffer.from(Array.from(test.images, (v) => Math.round(v * 255)));
    await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(imagePath);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('index writes a loadable index of the data, recording the run and space', async () => {
    const r = cli(
      'index',
      runDir,
      '--data',
      'fashion-mnist:train',
      '--data-dir',
      EMBEDDED_FASHION_MNIST_DIR,
      '--limit',
      '600',
      '--out',
      indexPath,
      '--backend',
      'wasm',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.items, 600);
    assert.equal(summary.labelled, 600);
    assert.equal(summary.space, 'backbone');
    const index = await EmbeddingIndex.load(indexPath);
    assert.equal(index.size, 600);
    assert.equal(index.model?.source, resolve(runDir));
    assert.equal(index.item('5').label?.length, 3);
  });

  it('search by id, vector and image prints a table with scores, label paths and LCA heights', async () => {
    const byId = cli('search', indexPath, '--id', '0', '--k', '5', '--backend', 'wasm');
    assert.equal(byId.status, 0, byId.stderr);
    assert.match(byId.stdout, /^rank\s+id\s+score\s+label path\s+LCA height\s+source/m);
    assert.equal(byId.stdout.trim().split('\n').length, 2 + 5 + 1);
    assert.match(byId.stdout, /query label: \w+\/\w+\//);
    const json = JSON.parse(
      cli('search', indexPath, '--id', '0', '--k', '5', '--within', 'Goods', '--json', '--backend', 'wasm')
        .stdout,
    );
    assert.equal(json.results.length, 5);
    for (const hit of json.results) {
      assert.match(hit.label, /^Goods\//);
      assert.ok(Number.isInteger(hit.lcaHeight) && hit.lcaHeight >= 0 && hit.lcaHeight <= 3);
      assert.notEqual(hit.id, '0');
    }
    const index = await EmbeddingIndex.load(indexPath);
    const vector = Array.from(index.embedding('7'));
    const byVector = JSON.parse(
      cli('search', indexPath, '--vector', vector.join(','), '--k', '1', '--json', '--backend', 'wasm')
        .stdout,
    );
    assert.equal(byVector.results[0].id, '7');
    const grouped = JSON.parse(
      cli(
        'search',
        indexPath,
        '--id',
        '3',
        '--k',
        '2',
        '--group-by',
        'family',
        '--group-size',
        '2',
        '--json',
        '--backend',
        'wasm',
      ).stdout,
    );
    assert.equal(new Set(grouped.results.map((r: { group: string }) => r.group)).size, 2);
    const byImage = cli('search', indexPath, '--image', imagePath, '--k', '3', '--json', '--backend', 'wasm');
    assert.equal(byImage.status, 0, byImage.stderr);
    assert.equal(JSON.parse(byImage.stdout).results.length, 3);
  });

  it('index --approximate builds the HNSW graph; search uses it unless --exact or --within', async () => {
    const approxPath = join(dir, 'approx.index');
    const r = cli(
      'index',
      runDir,
      '--data',
      'fashion-mnist:train',
      '--data-dir',
      EMBEDDED_FASHION_MNIST_DIR,
      '--limit',
      '300',
      '--out',
      approxPath,
      '--approximate',
      '--backend',
      'wasm',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /approximate \(HNSW\) \+ exact search/);
    const search = (...args: string[]) =>
      JSON.parse(cli('search', approxPath, '--id', '1', '--json', '--backend', 'wasm', ...args).stdout);
    assert.equal(search().approximate, true);
    assert.equal(search('--exact').approximate, false);
    assert.equal(search('--within', 'Clothes').approximate, false);
  });

  it('search errors name the bad field: within not in the tree, k <= 0, unknown id, bad vector, undecodable image', () => {
    const fails = (pattern: RegExp, ...args: string[]) => {
      const r = cli('search', indexPath, ...args, '--backend', 'wasm');
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'an expected error prints no stack');
    };
    fails(
      /within must be a node of the label tree, but "Clothes\/Topps" is not one .*did you mean "Clothes\/Tops"\?/,
      '--id',
      '0',
      '--within',
      'Clothes/Topps',
    );
    fails(/k must be an integer >= 1, but got 0/, '--id', '0', '--k', '0');
    fails(/query\.id must be the id of an item in the index, but "nope" is not one/, '--id', 'nope');
    fails(/query vector must have 64 values \(the index's dimension\), but got 2/, '--vector', '1,2');
    fails(/--vector value 1 must be a finite number, but got "x"/, '--vector', '1,x');
    fails(/give exactly one of --image, --id and --vector, but got none/);
    fails(/cannot decode .*catalogue\.index as an image/, '--image', indexPath);
  });

  it('predict writes per-level predictions and confidences (CSV and JSONL) and prints coverage vs accuracy', async () => {
    const csv = join(dir, 'preds.csv');
    const r = cli(
      'predict',
      indexPath,
      '--data',
      'fashion-mnist:test',
      '--data-dir',
      EMBEDDED_FASHION_MNIST_DIR,
      '--limit',
      '80',
      '--out',
      csv,
      '--k',
      '20',
      '--backend',
      'wasm',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^level\s+threshold\s+calib\. coverage\s+calib\. precision\s+answered\s+accuracy/m,
    );
    assert.match(r.stdout, /method: (knn|prototype) \(measured: knn covers .*prototype covers/);
    const lines = (await readFile(csv, 'utf8')).trim().split('\n');
    assert.equal(
      lines[0],
      'id,source,label,path,depth,group,group_confidence,family,family_confidence,class,class_confidence',
    );
    assert.equal(lines.length, 81);
    const jsonl = join(dir, 'preds.jsonl');
    const j = cli(
      'predict',
      indexPath,
      '--data',
      'fashion-mnist:test',
      '--data-dir',
      EMBEDDED_FASHION_MNIST_DIR,
      '--limit',
      '80',
      '--out',
      jsonl,
      '--k',
      '20',
      '--min-confidence',
      '0.99',
      '--json',
      '--backend',
      'wasm',
    );
    assert.equal(j.status, 0, j.stderr);
    const summary = JSON.parse(j.stdout);
    assert.equal(summary.levels.length, 3);
    const records = (await readFile(jsonl, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(records.length, 80);
    for (const rec of records) {
      assert.equal(rec.path.split('/').filter(Boolean).length, rec.depth);
      assert.equal(rec.levels.length, 3);
      rec.levels.forEach((l: { answered: boolean; confidence: number }, i: number) => {
        assert.equal(l.answered, i < rec.depth);
        if (l.answered) assert.ok(l.confidence >= 0.99);
      });
    }
  });

  it('predict without --out prints the predictions (a table, or JSONL with --json); predicting index items is refused', () => {
    const base = [
      'predict',
      indexPath,
      '--data-dir',
      EMBEDDED_FASHION_MNIST_DIR,
      '--k',
      '20',
      '--backend',
      'wasm',
    ];
    const table = cli(...base, '--data', 'fashion-mnist:test', '--limit', '5');
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, /^id\s+label\s+path\s+group \(conf\.\)/m);
    assert.match(table.stderr, /with 90\.0 % confidence/);
    const jsonl = cli(...base, '--data', 'fashion-mnist:test', '--limit', '5', '--json');
    assert.equal(jsonl.status, 0, jsonl.stderr);
    assert.equal(jsonl.stdout.trim().split('\n').length, 5);
    assert.ok(JSON.parse(jsonl.stdout.split('\n')[0]).levels.length === 3);
    const own = cli(...base, '--data', 'fashion-mnist:train', '--limit', '5');
    assert.equal(own.status, 1);
    assert.match(own.stderr, /5 of 5 items to predict are also items of the index .* --allow-overlap/);
  });

  it('dedupe prints pairs and clusters; --json gives them to scripts', () => {
    const r = cli('dedupe', indexPath, '--threshold', '0.95', '--backend', 'wasm');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\d+ pairs in \d+ clusters at similarity >= 0\.9500/);
    const json = JSON.parse(
      cli('dedupe', indexPath, '--target-precision', '0.99', '--json', '--backend', 'wasm').stdout,
    );
    assert.equal(json.calibration.from, 'copies');
    for (const p of json.pairs) assert.ok(p.score >= json.threshold);
    const byDefault = cli('dedupe', indexPath, '--backend', 'wasm');
    assert.equal(byDefault.status, 0, byDefault.stderr);
    assert.match(
      byDefault.stdout,
      /calibrated for 0\.99 precision from copies \(\d+ copies made by Gaussian feature noise/,
    );
    assert.match(
      cli('dedupe', indexPath, '--threshold', '0.9', '--target-precision', '0.9').stderr,
      /give one of --threshold and --target-precision, not both/,
    );
  });

  it('embed --data embeds any source; --split keeps its behaviour', async () => {
    const out = join(dir, 'folder.npy');
    const r = cli('embed', runDir, '--data', join(dir, 'query'), '--out', out, '--backend', 'wasm');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((await readNpy(out)).shape, [1, 64]);
    assert.equal((await readFile(`${out}.ids.txt`, 'utf8')).trim(), imagePath);
    const head = join(dir, 'head.jsonl');
    assert.equal(
      cli(
        'embed',
        runDir,
        '--data',
        'fashion-mnist',
        '--data-dir',
        EMBEDDED_FASHION_MNIST_DIR,
        '--limit',
        '5',
        '--space',
        'head',
        '--out',
        head,
      ).status,
      0,
    );
    const rows = (await readFile(head, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(rows.length, 5);
    assert.equal(rows[0].embedding.length, 32);
    assert.match(rows[0].label, /^(Clothes|Goods)\//);
    const split = join(dir, 'split.npy');
    assert.equal(cli('embed', runDir, '--out', split, '--split', 'test').status, 0);
    assert.deepEqual((await readNpy(split)).shape, [120, 64]);
  });
});
