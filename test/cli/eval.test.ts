/**
 * `contrastive eval` through the real CLI: test vs test and test vs train retrieval, each
 * labelled; progress lines on stderr (none with --json); a sampled raw-input baseline is shown
 * with its sample and the trained model's numbers on the same rows.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { Rng } from '../../src/random.js';
import { evaluateRun } from '../../src/run/evaluateRun.js';
import type { EvalFile } from '../../src/run/records.js';
import { cli, hasNoStack, SMALL_RUN } from '../helpers/cli.js';
import { tempRuns } from '../helpers/train.js';

describe('contrastive eval: cross-split retrieval, baselines, progress', () => {
  let dir: string;
  let run: string;
  before(async () => {
    dir = await tempRuns();
    run = join(dir, 'run');
    const r = cli(['train', ...SMALL_RUN, '--epochs', '1', '--out', run]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints test vs test and test vs train retrieval, each labelled, with progress on stderr', async () => {
    const r = cli(['eval', run, '--probe-epochs', '2', '--knn-k', '10']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /test vs test, leave-one-out\), 128 queries/);
    assert.match(
      r.stdout,
      /retrieval of test queries among the 256 training items \(test vs train, cross-split\)/,
    );
    assert.match(r.stdout, /mAP@R class \(test vs train\)/);
    assert.match(r.stderr, /^eval: loading the run /m);
    assert.match(r.stderr, /^eval: embedding the train split: 256\/256$/m);
    assert.match(r.stderr, /^eval: embedding the test split: 128\/128$/m);
    assert.match(r.stderr, /^eval: baseline: the raw input$/m);
    const file = JSON.parse(await readFile(join(run, 'eval.json'), 'utf8')) as EvalFile;
    assert.ok(file.crossRetrieval);
    assert.equal(file.crossRetrieval.length, file.retrieval.length);
    for (const level of file.crossRetrieval) assert.equal(level.numQueries, 128);
    assert.ok(file.baselines?.every((b) => b.crossMapAtR?.length === file.retrieval.length));
  });

  it('--json prints the evaluation on stdout and nothing on stderr', () => {
    const r = cli(['eval', run, '--probe-epochs', '0', '--knn-k', '10', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const parsed = JSON.parse(r.stdout) as EvalFile;
    assert.equal(parsed.numTest, 128);
    assert.ok(parsed.crossRetrieval);
    assert.equal(parsed.strips, undefined);
  });

  it('a sampled raw-input baseline carries the trained numbers on the same rows', async () => {
    const images = join(dir, 'photos');
    const rng = new Rng(5);
    for (const [c, path] of ['A/a', 'A/b', 'B/c', 'B/d'].entries()) {
      await mkdir(join(images, path), { recursive: true });
      for (let i = 0; i < 10; i++) {
        const pixels = Buffer.from(
          Array.from({ length: 8 * 8 * 3 }, (_, k) => (50 * c + k + rng.int(20)) & 255),
        );
        await sharp(pixels, { raw: { width: 8, height: 8, channels: 3 } })
          .png()
          .toFile(join(images, path, `${i}.png`));
      }
    }
    const streamed = join(dir, 'streamed');
    const t = cli([
      'train',
      '--data',
      images,
      '--stream',
      'on',
      '--channels',
      '3',
      '--image-size',
      '8',
      '--encoder',
      'mlp',
      '--batch-size',
      '8',
      '--epochs',
      '1',
      '--backend',
      'wasm',
      '--out',
      streamed,
    ]);
    assert.equal(t.status, 0, t.stderr);
    const result = await evaluateRun(streamed, {
      backend: 'wasm',
      knnK: 5,
      strips: 0,
      linearProbe: false,
      rawBaselineRows: { train: 12, test: 4 },
    });
    const raw = result.baselines?.[0];
    assert.ok(raw);
    assert.ok(
      raw.sampledRows && raw.sampledRows.train === 12 && raw.sampledRows.test === 4,
      JSON.stringify(raw),
    );
    assert.ok(raw.trainedOnSameRows);
    assert.equal(raw.trainedOnSameRows.knnAccuracyByLevel.length, 2);
    // the untrained encoder was scored on every row: no sample
    assert.equal(result.baselines?.[1].sampledRows, undefined);
    // whole splits when they fit: no sample, nothing extra
    const whole = await evaluateRun(streamed, { backend: 'wasm', knnK: 5, strips: 0, linearProbe: false });
    assert.equal(whole.baselines?.[0].sampledRows, undefined);
    assert.equal(whole.baselines?.[0].trainedOnSameRows, undefined);
    const printed = cli(['eval', streamed, '--knn-k', '5', '--probe-epochs', '0', '--strips', '0']);
    assert.equal(printed.status, 0, printed.stderr);
    assert.ok(hasNoStack(printed.stderr));
  });
});
