/**
 * Nothing lost, nothing silently wrong: each numbered case of the reliability issue, run through
 * the real CLI in a temporary folder.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { encodeNpy, writeNpy } from '../../src/data/npy.js';
import { useBackend } from '../../src/engine/backend.js';
import { ContrastiveError } from '../../src/errors.js';
import { evaluateEmbeddings } from '../../src/eval/evaluate.js';
import { loadLayersModelFromDir, saveLayersModel } from '../../src/models/modelIO.js';
import { Rng } from '../../src/random.js';
import { cli, cliAsync, hasNoStack, SMALL_RUN, writeCsvTable } from '../helpers/cli.js';
import { tempRuns } from '../helpers/train.js';

describe('reliability: run folders, checkpoints, bad data, write failures', () => {
  let dir: string;
  let base: string;
  const S = [...SMALL_RUN, '--epochs', '2'];
  /** A failed command: exit 1, one error line (plus at most a hint), no stack trace. */
  const assertCleanError = (r: { status: number | null; stderr: string }, pattern: RegExp) => {
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, pattern);
    assert.ok(hasNoStack(r.stderr), r.stderr);
    const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(errorLines.length, 1, r.stderr);
  };

  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    base = join(dir, 'base');
    const r = cli(['train', ...S, '--out', base]);
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('1. a non-empty folder that is not a run is refused and left as it was', async () => {
    const proj = join(dir, 'proj');
    await mkdir(join(proj, 'model'), { recursive: true });
    await writeFile(join(proj, 'config.json'), '{"mine":1}');
    await writeFile(join(proj, 'model', 'model.json'), 'notes');
    const r = cli(['train', ...S, '--out', proj]);
    assertCleanError(r, /is not empty and is not a run folder/);
    assert.equal(await readFile(join(proj, 'config.json'), 'utf8'), '{"mine":1}');
    assert.equal(await readFile(join(proj, 'model', 'model.json'), 'utf8'), 'notes');
    assert.ok(!existsSync(join(proj, 'labelTree.json')));
  });

  it('2. a run whose model was never saved is finished by --resume; stale .tmp files are removed', async () => {
    const b2 = join(dir, 'b2');
    await cp(base, b2, { recursive: true });
    await rm(join(b2, 'model'), { recursive: true });
    await writeFile(join(b2, '.123-4-abc.tmp'), 'half a file');
    const r = cli(['train', '--out', b2, '--resume']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /model was not saved; saving it/);
    assert.match(r.stderr, /removed 1 temporary file/);
    assert.ok(!existsSync(join(b2, '.123-4-abc.tmp')));
    assert.deepEqual(
      await readFile(join(b2, 'model', 'weights.bin')),
      await readFile(join(base, 'model', 'weights.bin')),
    );
    const e = cli([
      'eval',
      b2,
      '--knn-k',
      '5',
      '--probe-epochs',
      '0',
      '--strips',
      '0',
      '--consistency-anchors',
      '50',
    ]);
    assert.equal(e.status, 0, e.stderr);
    // a finished run with its model is not resumed again without more epochs
    assertCleanError(cli(['train', '--out', b2, '--resume']), /is finished \(2 epochs\); pass --epochs/);
  });

  it('3. a damaged checkpoint is refused, naming it and offering the previous one', async () => {
    const b3 = join(dir, 'b3');
    await cp(base, b3, { recursive: true });
    await rm(join(b3, 'model'), { recursive: true });
    const path = join(b3, 'checkpoint.bin');
    const bytes = await readFile(path);
    for (let i = bytes.length - 400; i < bytes.length - 300; i++) bytes[i] ^= 0xff;
    await writeFile(path, bytes);
    const r = cli(['train', '--out', b3, '--resume']);
    assertCleanError(r, /checkpoint\.bin is damaged \(checksum mismatch\)/);
    assert.match(
      r.stderr,
      /checkpoint\.prev\.bin \(epoch 2, step 8\) is intact: resume from it with --resume --resume-from checkpoint\.prev\.bin/,
    );
    // a damaged JSON header: the same clear error, not a SyntaxError
    const header = await readFile(join(base, 'checkpoint.bin'));
    header[80] = '{'.charCodeAt(0);
    await writeFile(path, header);
    assertCleanError(cli(['train', '--out', b3, '--resume']), /checkpoint\.bin is damaged/);
    // the offered remedy works: it redoes the second epoch and ends with the same weights
    const ok = cli(['train', '--out', b3, '--resume', '--resume-from', 'checkpoint.prev.bin']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(
      await readFile(join(b3, 'model', 'weights.bin')),
      await readFile(join(base, 'model', 'weights.bin')),
    );
    // a saved model with damaged weights is refused too
    const b3m = join(b3, 'model', 'weights.bin');
    const w = await readFile(b3m);
    w[10] ^= 0xff;
    await writeFile(b3m, w);
    assertCleanError(
      cli(['eval', b3, '--probe-epochs', '0']),
      /weights in .* are damaged \(checksum mismatch/,
    );
  });

  it('4. non-finite embeddings are an error naming how many rows, in eval, embed and the library', async () => {
    const b4 = join(dir, 'b4');
    await cp(base, b4, { recursive: true });
    const model = await loadLayersModelFromDir(join(b4, 'model'));
    model.setWeights(model.getWeights().map((w) => tf.fill(w.shape, Number.NaN)));
    await saveLayersModel(model, join(b4, 'model'));
    model.dispose();
    assertCleanError(
      cli(['eval', b4, '--probe-epochs', '0']),
      /128 of 128 test embeddings are not finite|of \d+ train embeddings are not finite/,
    );
    assertCleanError(
      cli(['embed', b4, '--out', join(dir, 'nan.npy')]),
      /128 of 128 embeddings of the test split are not finite/,
    );
    assert.ok(!existsSync(join(dir, 'nan.npy')));
    const labels = [[0], [1]];
    assert.throws(
      () =>
        evaluateEmbeddings(
          {
            embeddings: tf.tensor2d([
              [1, 0],
              [0, 1],
            ]),
            labels,
          },
          {
            embeddings: tf.tensor2d([
              [Number.NaN, 0],
              [0, 1],
            ]),
            labels,
          },
          { knnK: 1, linearProbe: false },
        ),
      (e: Error) => e instanceof ContrastiveError && /1 of 2 test embeddings are not finite/.test(e.message),
    );
    const e0 = cli(['eval', base, '--probe-epochs', '0', '--strips', '0', '--consistency-anchors', '0']);
    assert.equal(e0.status, 0, e0.stderr);
    assert.match(e0.stdout, /hierarchy-consistency violations: not measured/);
  });

  it('5. eval refuses data that changed since training; a moved file can be pointed to', async () => {
    const csv = join(dir, 'items.csv');
    await writeCsvTable(csv, 200);
    const run = join(dir, 'csv-run');
    const t = cli([
      'train',
      '--data',
      csv,
      '--encoder',
      'mlp',
      '--method',
      'supcon',
      '--epochs',
      '1',
      '--batch-size',
      '32',
      '--backend',
      'wasm',
      '--out',
      run,
    ]);
    assert.equal(t.status, 0, t.stderr);
    await writeCsvTable(csv, 200, 1, ['Shoes/Boot', 'Shoes/Boots']);
    assertCleanError(
      cli(['eval', run, '--probe-epochs', '0']),
      /label tree differs .*new classes Boots; missing classes Boot/,
    );
    const moved = join(dir, 'moved.csv');
    await writeCsvTable(moved, 200);
    assertCleanError(
      cli(['eval', run, '--probe-epochs', '0', '--data', join(dir, 'nope.csv')]),
      /nope\.csv: no such file/,
    );
    const e = cli(['eval', run, '--probe-epochs', '0', '--data', moved, '--strips', '0']);
    assert.equal(e.status, 0, e.stderr);
    // same tree, other rows: the fingerprint catches it
    await writeCsvTable(moved, 200, 2);
    assertCleanError(
      cli(['eval', run, '--probe-epochs', '0', '--data', moved]),
      /split is not the one .* was trained with/,
    );
  });

  it('6. write failures are one-line errors naming the path, checked before any work', async () => {
    const folder = join(dir, 'a-folder');
    await mkdir(folder);
    assertCleanError(cli(['embed', base, '--out', folder]), /--out .*a-folder must end in \.npy or \.jsonl/);
    await mkdir(join(dir, 'f.npy'));
    assertCleanError(cli(['embed', base, '--out', join(dir, 'f.npy')]), /f\.npy is a folder; name a file/);
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    assertCleanError(
      cli(['embed', base, '--out', join(file, 'e.npy')]),
      /cannot write --out .*a-file\/e\.npy: a part of the path is a file/,
    );
    assertCleanError(
      cli(['report', base, '--out', join(file, 'r.html')]),
      /cannot write --out .*a-file\/r\.html/,
    );
    assertCleanError(
      cli(['report', base, '--charts-dir', file]),
      /--charts-dir .*a-file is a file; name a folder/,
    );
  });

  it('6b. records written after the last checkpoint are not duplicated by a resume', async () => {
    const b6 = join(dir, 'b6');
    const t = cli(['train', ...S, '--out', b6, '--epochs', '1']);
    assert.equal(t.status, 0, t.stderr);
    await rm(join(b6, 'model'), { recursive: true });
    // as if the run had logged past its checkpoint, then died (e.g. the disk filled)
    await appendFile(join(b6, 'metrics.jsonl'), '{"kind":"step","epoch":2,"step":10,"loss":1}\n{"kind":"st');
    const r = cli(['train', '--out', b6, '--resume']);
    assert.equal(r.status, 0, r.stderr);
    const lines = (await readFile(join(b6, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.filter((l) => l.kind === 'epoch').length, 1);
    assert.ok(lines.every((l) => l.step <= 8));
  });

  it('7. a damaged or missing config.json is a clear error in eval, embed and train --resume', async () => {
    const b7 = join(dir, 'b7');
    await cp(base, b7, { recursive: true });
    await writeFile(join(b7, 'config.json'), '{"method": "supc');
    assertCleanError(cli(['eval', b7]), /config\.json is damaged \(not valid JSON/);
    assertCleanError(cli(['embed', b7, '--out', join(dir, 'e7.npy')]), /config\.json is damaged/);
    await rm(join(b7, 'config.json'));
    assertCleanError(cli(['eval', b7]), /config\.json does not exist/);
    // resume takes its options from the checkpoint, so a lost config.json does not stop it
    await rm(join(b7, 'model'), { recursive: true });
    const r = cli(['train', '--out', b7, '--resume']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(b7, 'config.json')));
  });

  it('8. tiny or empty splits fail before training, and the folder can be rerun in place', async () => {
    const tiny = join(dir, 'tiny.csv');
    await writeCsvTable(tiny, 3);
    const out = join(dir, 'tiny-run');
    assertCleanError(
      cli(['train', '--data', tiny, '--encoder', 'mlp', '--epochs', '1', '--backend', 'wasm', '--out', out]),
      /split .* is empty|larger than the \d+ training rows/,
    );
    const small = join(dir, 'small.csv');
    await writeCsvTable(small, 200);
    assertCleanError(
      cli([
        'train',
        '--data',
        small,
        '--validation-fraction',
        '0.01',
        '--batch-size',
        '16',
        '--encoder',
        'mlp',
        '--epochs',
        '1',
        '--backend',
        'wasm',
        '--out',
        out,
      ]),
      /validation split .* is empty|training split has/,
    );
    assertCleanError(
      cli([
        'train',
        '--data',
        small,
        '--batch-size',
        '500',
        '--encoder',
        'mlp',
        '--epochs',
        '1',
        '--backend',
        'wasm',
        '--out',
        out,
      ]),
      /--batch-size 500 is larger than the 160 training rows; pass --batch-size 160 or less/,
    );
    // a run that failed before its first checkpoint does not block the folder
    const ok = cli([
      'train',
      '--data',
      small,
      '--batch-size',
      '32',
      '--encoder',
      'mlp',
      '--epochs',
      '1',
      '--backend',
      'wasm',
      '--out',
      out,
    ]);
    assert.equal(ok.status, 0, ok.stderr);
  });

  it('9. Ctrl-C and SIGTERM stop with a checkpoint and exit status 130', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const out = join(dir, `sig-${signal}`);
      let sent = false;
      const r = await cliAsync(
        ['train', ...SMALL_RUN, '--epochs', '50', '--log-every', '1', '--out', out],
        (text, child) => {
          if (!sent && /step \d+\/8/.test(text)) {
            sent = true;
            child.kill(signal);
          }
        },
      );
      assert.equal(r.status, 130, r.stderr);
      assert.match(
        r.stderr,
        /checkpoint written at step \d+; continue with: contrastive train --out .* --resume/,
      );
      assert.ok(existsSync(join(out, 'checkpoint.bin')));
    }
  });

  it('10. --resume refuses options that would change the run, extends with --epochs; other silent cases', async () => {
    const b10 = join(dir, 'b10');
    await cp(base, b10, { recursive: true });
    assertCleanError(
      cli(['train', '--out', b10, '--resume', '--method', 'simclr']),
      /--method "simclr" \(the run has "supcon"\) would change the run/,
    );
    const more = cli(['train', '--out', b10, '--resume', '--epochs', '3']);
    assert.equal(more.status, 0, more.stderr);
    assert.match(more.stderr, /goes on to 3 epochs instead of 2/);
    assert.equal(JSON.parse(await readFile(join(b10, 'config.json'), 'utf8')).epochs, 3);
    assertCleanError(cli(['embed', base, '--out', join(dir, 'x.txt')]), /must end in \.npy or \.jsonl/);
    assertCleanError(
      cli(['train', ...S, '--batch-size', '1', '--out', join(dir, 'b1')]),
      /a batch needs at least 2 samples/,
    );
  });

  it('11. every remedy an error names is a flag: --labels for a .npy table', async () => {
    const rng = new Rng(3);
    const n = 120;
    const data = Float32Array.from(
      { length: n * 4 },
      (_, i) => (i % 4 === Math.floor(i / 4) % 2 ? 2 : 0) + rng.normal(),
    );
    await writeNpy(join(dir, 'x.npy'), { shape: [n, 4], data });
    await writeFile(
      join(dir, 'x.labels.txt'),
      `${Array.from({ length: n }, (_, i) => (i % 2 ? 'A/a' : 'B/b')).join('\n')}\n`,
    );
    const withoutLabels = cli([
      'train',
      '--data',
      join(dir, 'x.npy'),
      '--encoder',
      'mlp',
      '--out',
      join(dir, 'npy0'),
    ]);
    assertCleanError(withoutLabels, /labelsPath|--labels/);
    const r = cli([
      'train',
      '--data',
      join(dir, 'x.npy'),
      '--labels',
      join(dir, 'x.labels.txt'),
      '--encoder',
      'mlp',
      '--epochs',
      '1',
      '--batch-size',
      '16',
      '--backend',
      'wasm',
      '--out',
      join(dir, 'npy'),
    ]);
    assert.equal(r.status, 0, r.stderr);
    const help = cli(['train', '--help']).stdout;
    for (const flag of [
      '--labels',
      '--label-column',
      '--delimiter',
      '--skip-unreadable',
      '--allow-shared-names',
      '--test-data',
      '--test-fraction',
      '--image-size',
      '--channels',
    ]) {
      assert.ok(help.includes(flag), `train --help lacks ${flag}`);
    }
  });

  it('12. sizes that cannot fit are refused up front, saying what fits', () => {
    const moco = cli([
      'train',
      ...S,
      '--method',
      'moco',
      '--queue-size',
      '100000000',
      '--out',
      join(dir, 'q'),
    ]);
    assertCleanError(
      moco,
      /--queue-size 100000000 × --projection-dim 16 needs .* GiB for the queue alone; at most about [\d,]+ keys fit/,
    );
    const wide = cli(['train', ...S, '--embedding-dim', '3000000', '--out', join(dir, 'w')]);
    assertCleanError(
      wide,
      /--embedding-dim 3000000 .* does not fit .* An embedding of up to about [\d,]+ fits/,
    );
  });

  it('13. library and eval arguments are checked with names a user can act on', () => {
    assert.throws(
      () => new Rng('abc' as unknown as number),
      (e: Error) => e instanceof ContrastiveError && /Rng: seed must be/.test(e.message),
    );
    assert.throws(
      () => encodeNpy({ shape: [3, 2], data: new Float32Array(5) }),
      /shape \[3, 2\] holds 6 values but the data has 5/,
    );
    assertCleanError(cli(['eval', base, '--knn-k', '0']), /--knn-k must be >= 1, but got "0"/);
    assertCleanError(
      cli(['eval', base, '--consistency-anchors', '-1']),
      /--consistency-anchors must be >= 0/,
    );
  });
});
