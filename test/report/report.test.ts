import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { useBackend } from '../../src/engine/backend.js';
import { loadRun, renderReport, writeReport } from '../../src/report/index.js';
import { makeRunFolder } from '../helpers/runs.js';

describe('HTML report', () => {
  let dir: string;
  before(async () => {
    await useBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'contrastive-report-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads run folders (tolerating a torn last metrics line) and renders one offline page', async () => {
    const runs = [await makeRunFolder(dir, 'fm-hmce', 1), await makeRunFolder(dir, 'fm-supcon', 2)];
    const run = await loadRun(runs[0]);
    assert.equal(run.name, 'fm-hmce');
    assert.equal(run.method, 'himulcone');
    assert.equal(run.history.length, 20);
    const { out, charts } = await writeReport(runs, {
      out: join(dir, 'report.html'),
      chartsDir: join(dir, 'charts'),
    });
    const html = await readFile(out, 'utf8');
    assert.match(html, /<table class="metrics">/);
    assert.match(html, /<h3>fm-hmce: retrieval per level/);
    assert.equal((html.match(/<svg /g) ?? []).length, 1 + 2 * (1 + 2)); // loss, then per run: levels + 2 maps
    assert.match(html, /Bag &lt;b&gt;/); // names are escaped
    assert.doesNotMatch(html.replace(/xmlns="http:\/\/www.w3.org\/2000\/svg"/g, ''), /(src|href)="https?:/);
    assert.equal(charts.length, 2 * 7);
    const png = await readFile(charts.find((c) => c.endsWith('loss.png'))!);
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
  });

  it('a missing run folder is a clear error', async () => {
    await assert.rejects(loadRun(join(dir, 'nope')), /loadRun: .*nope is not a run folder/);
    assert.match(renderReport([{ name: 'empty', history: [] }]), /<h1>Contrastive runs: empty<\/h1>/);
  });
});
