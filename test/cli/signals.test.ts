/**
 * Signals while training, through a real child process: the handler only counts; the first
 * Ctrl-C (or SIGTERM, or SIGHUP: the terminal closed) stops with a checkpoint, a second one while
 * stopping leaves after the step in flight — every time exit status 130, no stack, no heap
 * corruption, and a folder that resumes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { train } from '../../src/run/train.js';
import { cli, cliAsync, hasNoStack, SMALL_RUN } from '../helpers/cli.js';
import { quietProgress, smallConfig, tempRuns } from '../helpers/train.js';

describe('training signals', () => {
  let dir: string;
  before(async () => {
    dir = await tempRuns();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a second Ctrl-C while stopping exits 130 cleanly, five times in a row, and the folder resumes', async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const out = join(dir, `twice-${attempt}`);
      let first = false;
      let second = false;
      const r = await cliAsync(
        ['train', ...SMALL_RUN, '--epochs', '2', '--log-every', '1', '--out', out],
        (text, child) => {
          if (!first && /step \d+\/8/.test(text)) {
            first = true;
            child.kill('SIGINT');
          }
          if (first && !second && /stopping:/.test(text)) {
            second = true;
            child.kill('SIGINT');
          }
        },
      );
      assert.equal(r.signal, null, r.stderr);
      assert.equal(r.status, 130, r.stderr);
      assert.ok(hasNoStack(r.stderr), r.stderr);
      assert.doesNotMatch(r.stderr, /double free|corrupted|malloc|Aborted/);
      assert.match(r.stderr, /checkpoint written at step \d+|left without a new checkpoint at step \d+/);
      if (attempt === 0) {
        const resumed = cli(['train', '--out', out, '--resume']);
        assert.equal(resumed.status, 0, resumed.stderr);
      }
    }
  });

  it('SIGHUP stops like SIGTERM: a checkpoint, exit status 130', async () => {
    const out = join(dir, 'hup');
    let sent = false;
    const r = await cliAsync(
      ['train', ...SMALL_RUN, '--epochs', '50', '--log-every', '1', '--out', out],
      (text, child) => {
        if (!sent && /step \d+\/8/.test(text)) {
          sent = true;
          child.kill('SIGHUP');
        }
      },
    );
    assert.equal(r.status, 130, r.stderr);
    assert.match(
      r.stderr,
      /checkpoint written at step \d+; continue with: contrastive train --out .* --resume/,
    );
    assert.ok(existsSync(join(out, 'checkpoint.bin')));
  });

  it('the abort signal leaves after the step in flight without writing a checkpoint', async () => {
    const out = join(dir, 'abort');
    const stop = new AbortController();
    const abort = new AbortController();
    stop.abort();
    abort.abort();
    const result = await train(await smallConfig(out, { epochs: 1 }), {
      progress: quietProgress(),
      signal: stop.signal,
      abort: abort.signal,
    });
    assert.equal(result.interrupted, true);
    assert.equal(result.aborted, true);
    assert.equal(result.steps, 1);
    assert.equal(existsSync(join(out, 'checkpoint.bin')), false);
  });
});
