/**
 * Fault injection: training is killed with SIGKILL at many points — after steps, between writing
 * a checkpoint and renaming it, between rotating the old one and renaming the new one, between
 * the head and the backbone, between a model's weights and its model.json — and every time the
 * folder must either resume to the bit-identical result or be refused with a clear message:
 * never stuck, never silently wrong.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cli, hasNoStack, SMALL_RUN } from '../helpers/cli.js';
import { tempRuns } from '../helpers/train.js';

/** `point:n`: the n-th visit of a fault point (8 steps per epoch, 2 epochs). */
const FAULTS = [
  'step:3', // before the first checkpoint: the folder restarts in place
  'step:11', // mid second epoch: resumes from the end of the first
  'checkpoint-temp-written:1', // first checkpoint written but not in place
  'checkpoint-rotated:2', // old checkpoint moved to .prev, new one not yet renamed
  'checkpoint-temp-written:2',
  'model-weights-written:1', // the head's weights.bin written, its model.json not
  'head-saved:1', // head complete, backbone not started
  'model-weights-written:2', // backbone weights written, model.json not: the run is not finished
];

describe('fault injection: SIGKILL anywhere, then resume', () => {
  let dir: string;
  let reference: { weights: Buffer; head: Buffer; epochs: number };
  const args = [...SMALL_RUN, '--epochs', '2'];

  before(async () => {
    dir = await tempRuns();
    const out = join(dir, 'reference');
    const r = cli(['train', ...args, '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    reference = {
      weights: await readFile(join(out, 'model', 'weights.bin')),
      head: await readFile(join(out, 'head', 'weights.bin')),
      epochs: (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
        .split('\n')
        .filter((l) => l.startsWith('{"kind":"epoch"')).length,
    };
    assert.equal(reference.epochs, 2);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const fault of FAULTS) {
    it(`killed at ${fault}: the resumed run ends bit-identical to an uninterrupted one`, async () => {
      const out = join(dir, fault.replace(':', '-'));
      const killed = cli(['train', ...args, '--out', out], { CONTRASTIVE_FAULT: fault });
      assert.equal(killed.signal, 'SIGKILL', `not killed at ${fault}: ${killed.stderr}`);
      // the folder is now either resumable (--resume) or restartable in place; never stuck
      const resumed = cli(['train', '--out', out, '--resume']);
      assert.equal(resumed.status, 0, resumed.stderr);
      assert.ok(hasNoStack(resumed.stderr), resumed.stderr);
      assert.deepEqual(await readFile(join(out, 'model', 'weights.bin')), reference.weights);
      assert.deepEqual(await readFile(join(out, 'head', 'weights.bin')), reference.head);
      const records = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; step: number });
      assert.equal(
        records.filter((r) => r.kind === 'epoch').length,
        reference.epochs,
        'an epoch logged twice or lost',
      );
      const steps = records.filter((r) => r.kind === 'step').map((r) => r.step);
      assert.deepEqual(
        steps,
        [...steps].sort((a, b) => a - b),
        'step records out of order',
      );
      assert.equal(new Set(steps).size, steps.length, 'a step logged twice');
      // and once finished, it is finished: no second resume, evaluation works
      const again = cli(['train', '--out', out, '--resume']);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /is finished/);
    });
  }
});
