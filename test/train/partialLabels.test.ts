/** Training on label paths of uneven depth kept as partial labels (`--short-labels unknown`). */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { useBackend } from '../../src/engine/backend.js';
import { train } from '../../src/run/train.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { writeCsvTable } from '../helpers/cli.js';
import { tempRuns } from '../helpers/train.js';

describe('partial labels in training (wasm)', () => {
  let dir: string;
  let csv: string;
  before(async () => {
    await useBackend('wasm');
    dir = await tempRuns();
    csv = join(dir, 'partial.csv');
    await writeCsvTable(csv, 160);
    // every fifth row is labelled only to its group (Clothes / Shoes)
    const lines = (await readFile(csv, 'utf8')).trim().split('\n');
    const cut = lines.map((line, i) => (i > 0 && i % 5 === 0 ? line.replace(/,(\w+)\/\w+$/, ',$1') : line));
    await writeFile(csv, `${cut.join('\n')}\n`);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (method: string, messages: string[]) => {
    const config = await resolveTrainConfig({
      data: csv,
      shortLabels: 'unknown',
      out: join(dir, method),
      method,
      epochs: 1,
      batchSize: 32,
      backend: 'wasm',
      evalEvery: 0,
    });
    const sink = {
      write: (t: string) => messages.push(t) > 0,
      isTTY: false,
    } as unknown as NodeJS.WriteStream;
    const { ProgressReporter } = await import('../../src/train/progress.js');
    return train(config, { progress: new ProgressReporter(sink, false) });
  };

  it('himulcone trains on every level each row knows', async () => {
    const messages: string[] = [];
    const result = await run('himulcone', messages);
    assert.ok(Number.isFinite(result.finalLoss));
    assert.ok(!messages.some((m) => /^note:/.test(m)));
  });

  it('supcon and ce use the finest level every row knows, and say so', async () => {
    for (const method of ['supcon', 'ce']) {
      const messages: string[] = [];
      const result = await run(method, messages);
      assert.ok(Number.isFinite(result.finalLoss), method);
      assert.ok(
        messages.some((m) =>
          /note: .* it uses level 0 \(level0\), the finest every training row knows/.test(m),
        ),
        messages.join(''),
      );
    }
  });

  it("a method's own check runs before training: reference mode on one label level is refused", async () => {
    const flat = join(dir, 'flat.csv');
    const lines = (await readFile(csv, 'utf8')).trim().split('\n');
    await writeFile(
      flat,
      `${lines.map((l, i) => (i === 0 ? l : l.replace(/,(\w+)(\/\w+)?$/, ',$1'))).join('\n')}\n`,
    );
    const config = await resolveTrainConfig({
      data: flat,
      out: join(dir, 'flat-run'),
      method: 'himulcone',
      hierarchyMode: 'reference',
      epochs: 1,
      batchSize: 32,
      backend: 'wasm',
    });
    const { ProgressReporter } = await import('../../src/train/progress.js');
    const sink = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
    await assert.rejects(
      train(config, { progress: new ProgressReporter(sink, false) }),
      /--hierarchy-mode reference needs at least 2 label levels, the data has 1/,
    );
  });
});
