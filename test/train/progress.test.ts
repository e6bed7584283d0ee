import assert from 'node:assert/strict';
import { it } from 'node:test';
import { formatDuration, ProgressReporter } from '../../src/train/progress.js';

const state = {
  epoch: 2,
  epochs: 5,
  step: 30,
  stepsPerEpoch: 20,
  stepInEpoch: 10,
  loss: 1.23456,
  levelLosses: [2, 1.5],
  samplesPerSecond: 812.4,
  etaSeconds: 125,
};

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  const stream = { write: (s: string) => chunks.push(s) > 0, isTTY } as unknown as NodeJS.WriteStream;
  return { reporter: new ProgressReporter(stream, isTTY), chunks };
}

it('on a terminal: one redrawn line with a bar, epoch, step, loss, level losses, speed and ETA', () => {
  const { reporter, chunks } = capture(true);
  reporter.update(state, false);
  assert.equal(
    chunks[0],
    '\r[##########..........] epoch 2/5 step 10/20 loss 1.2346 levels 2.000/1.500 812 samples/s ETA 2m05s',
  );
  reporter.update({ ...state, stepInEpoch: 20 }, false);
  assert.ok(chunks[1].startsWith('\r[####################]'));
  reporter.message('epoch 2/5: loss 1.2');
  assert.deepEqual(chunks.slice(2), ['\n', 'epoch 2/5: loss 1.2\n']);
});

it('not a terminal: plain log lines, only when asked to log', () => {
  const { reporter, chunks } = capture(false);
  reporter.update(state, false);
  assert.equal(chunks.length, 0);
  reporter.update(state, true);
  assert.equal(chunks[0], 'epoch 2/5 step 10/20 loss 1.2346 levels 2.000/1.500 812 samples/s ETA 2m05s\n');
  assert.equal(formatDuration(3725), '1h02m');
  assert.equal(formatDuration(Number.NaN), '?');
});

it('shows the share of time spent waiting for data when the loop measured it', () => {
  const { reporter, chunks } = capture(false);
  reporter.update({ ...state, dataWaitShare: 0.034 }, true);
  reporter.update({ ...state, dataWaitShare: 0.25 }, true);
  assert.equal(
    chunks[0],
    'epoch 2/5 step 10/20 loss 1.2346 levels 2.000/1.500 812 samples/s data 3.4% ETA 2m05s\n',
  );
  assert.match(chunks[1], / samples\/s data 25% ETA /);
});
