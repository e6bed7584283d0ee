import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { useBackend } from '../../src/engine/backend.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { makeRunFolder } from '../helpers/runs.js';

describe('contrastive compare / report', () => {
  const bin = resolve(REPO_ROOT, 'dist/src/cli/bin.js');
  const run = (cwd: string, ...args: string[]) =>
    spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8' });
  let dir: string;
  before(async () => {
    await useBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'contrastive-cli-'));
    await makeRunFolder(dir, 'a', 1, 'supcon');
    await makeRunFolder(dir, 'b', 2, 'himulcone');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('compare prints one table with the runs side by side', () => {
    const r = run(dir, 'compare', 'a', 'b');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^metric\s+a\s+b$/);
    assert.match(r.stdout, /method\s+supcon\s+himulcone/);
    assert.match(r.stdout, /mAP@R class %\s+\d+\.\d\d\s+\d+\.\d\d/);
    const json = JSON.parse(run(dir, 'compare', 'a', 'b', '--json').stdout);
    assert.deepEqual(Object.keys(json), ['a', 'b']);
  });

  it('compare names runs that were not evaluated', () => {
    const r = run(dir, 'compare', 'a', 'missing');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /missing is not a run folder/);
  });

  it('report writes the HTML file into the first run by default', () => {
    const r = run(dir, 'report', 'a', 'b');
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'a', 'report.html')));
  });
});
