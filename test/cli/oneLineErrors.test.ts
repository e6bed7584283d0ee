/**
 * Old cases that had slipped from a clear refusal to a vague one: each is one line naming what is
 * wrong, with no stack, and nothing is changed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { ContrastiveError } from '../../src/errors.js';
import { knnClassify, ntXentLoss, retrievalMetrics } from '../../src/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { cli, hasNoStack, SMALL_RUN } from '../helpers/cli.js';
import { tempRuns } from '../helpers/train.js';

const assertOneLine = (r: { status: number | null; stderr: string }, pattern: RegExp) => {
  assert.equal(r.status, 1, r.stderr);
  assert.ok(hasNoStack(r.stderr), r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], pattern);
};

describe('one-line errors through the CLI', () => {
  let dir: string;
  before(async () => {
    dir = await tempRuns();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('train --out naming an existing file: refused, the file untouched', async () => {
    const file = join(dir, 'notes.txt');
    await writeFile(file, 'mine');
    assertOneLine(
      cli(['train', ...SMALL_RUN, '--out', file]),
      /^error: train: --out .*notes\.txt is a file, not a folder; name a new or empty folder/,
    );
    assert.equal(await readFile(file, 'utf8'), 'mine');
  });

  it('eval on a file, or on a path that does not exist: refused, nothing created', async () => {
    const file = join(dir, 'eval.json');
    await writeFile(file, '{}');
    assertOneLine(cli(['eval', file]), /^error: eval: .*eval\.json is a file, not a run folder/);
    const missing = join(dir, 'no-such-run');
    assertOneLine(cli(['eval', missing]), /^error: eval: .*no-such-run does not exist; pass the run folder/);
    assert.equal(existsSync(missing), false);
  });
});

forEachBackend('one-line errors from the library', () => {
  it('ntXentLoss with one sample', () => {
    assert.throws(
      () => ntXentLoss(tf.ones([1, 2, 4])),
      (e: unknown) =>
        e instanceof ContrastiveError &&
        /^ntXentLoss: features \[1,2,4\] hold 1 sample; NT-Xent needs at least 2/.test(e.message),
    );
  });

  it('knnClassify and cross-split retrieval with embeddings of different sizes', () => {
    assert.throws(
      () => knnClassify(tf.ones([3, 4]), [0, 1, 0], tf.ones([5, 6]), [0, 1, 0, 1, 0]),
      (e: unknown) =>
        e instanceof ContrastiveError &&
        /^knnClassify: queries \[3,4\] and database \[5,6\] must have the same embedding size D, but got 4 and 6/.test(
          e.message,
        ),
    );
    assert.throws(
      () =>
        retrievalMetrics(tf.ones([3, 4]), [0, 1, 0], {
          database: { embeddings: tf.ones([2, 5]), labels: [0, 1] },
        }),
      (e: unknown) =>
        e instanceof ContrastiveError && /^retrievalMetrics: .*same embedding size D/.test(e.message),
    );
  });
});
