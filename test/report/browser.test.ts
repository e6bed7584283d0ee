/**
 * The report in a real browser: Debian's headless Chromium loads the file, logs nothing to the
 * console, renders every chart, and takes a screenshot. Skipped (with the reason) where Chromium
 * is not installed; `scripts/setup.sh` installs it where apt is available.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { writeReport } from '../../src/report/index.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

function chromium(userDataDir: string, ...args: string[]) {
  return spawnSync(
    CHROMIUM!,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${userDataDir}`,
      '--enable-logging=stderr',
      '--v=0',
      ...args,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
}

describe('HTML report in headless Chromium', { skip: CHROMIUM ? false : 'Chromium is not installed' }, () => {
  it('loads with no console output, shows every chart, and renders a non-blank screenshot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'contrastive-browser-'));
    try {
      const history = Array.from({ length: 30 }, (_, i) => ({
        kind: 'step' as const,
        epoch: 1,
        step: i,
        loss: 3 / (i + 1),
      }));
      const { out } = await writeReport(
        [
          { name: 'a', method: 'supcon', history },
          { name: 'b', method: 'himulcone', history: history.map((h) => ({ ...h, loss: h.loss * 1.2 })) },
        ],
        { out: join(dir, 'report.html') },
      );
      const url = pathToFileURL(out).href;
      const dom = chromium(join(dir, 'ud1'), '--dump-dom', url);
      assert.equal(dom.status, 0, dom.stderr);
      assert.equal((dom.stdout.match(/<svg /g) ?? []).length, 1);
      assert.match(dom.stdout, /<polyline class="series" data-name="a"/);
      const consoleLines = dom.stderr.split('\n').filter((l) => l.includes(':CONSOLE'));
      assert.deepEqual(consoleLines, [], 'the page logged to the console');

      const shot = join(dir, 'shot.png');
      const r = chromium(join(dir, 'ud2'), `--screenshot=${shot}`, '--window-size=1200,900', url);
      assert.equal(r.status, 0, r.stderr);
      const { width, height } = await sharp(shot).metadata();
      assert.deepEqual([width, height], [1200, 900]);
      const stats = await sharp(shot).stats();
      assert.ok(stats.channels[0].stdev > 5, 'the screenshot is blank');
      assert.ok((await readFile(out, 'utf8')).includes('Training loss'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
