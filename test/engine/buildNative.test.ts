/**
 * The engine for users who install the package: pack it, install the tarball into a fresh project
 * with install scripts off (what npm 11 does to a dependency's unless approved), check that
 * `doctor` names the one command that builds the engine, run that command, and check that `doctor`
 * then reports the native engine.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { BUILD_NATIVE_COMMAND } from '../../src/engine/native.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

/** Why the engine cannot be built here (the build script's own prerequisites), or null. */
function missingPrerequisite(): string | null {
  const hasCompiler = ['cc', 'gcc', 'clang'].some((cc) => spawnSync(cc, ['--version']).status === 0);
  if (!hasCompiler) return 'no C compiler';
  const cblas = [
    '/usr/include/x86_64-linux-gnu/cblas.h',
    '/usr/include/aarch64-linux-gnu/cblas.h',
    '/usr/include/cblas.h',
    '/usr/include/openblas/cblas.h',
  ];
  if (!cblas.some(existsSync)) return 'OpenBLAS headers not installed (libopenblas-dev)';
  if (process.env.CONTRASTIVE_NATIVE === '0') return 'CONTRASTIVE_NATIVE=0';
  return null;
}

const work = mkdtempSync(join(tmpdir(), 'contrastive-pack-'));
after(() => rmSync(work, { recursive: true, force: true }));

const missing = missingPrerequisite();

it(`npm pack, install into a fresh project, ${BUILD_NATIVE_COMMAND}, and doctor reports the native engine`, {
  skip: missing ?? false,
}, () => {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' };
  delete env.CONTRASTIVE_ONEDNN;
  execFileSync('npm', ['pack', '--pack-destination', work, '--silent'], {
    cwd: REPO_ROOT,
    env,
    stdio: 'pipe',
  });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack wrote no tarball');
  const project = join(work, 'project');
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'user-project', version: '1.0.0', private: true }),
  );
  execFileSync('npm', ['install', join(work, tarball), '--ignore-scripts', '--prefer-offline'], {
    cwd: project,
    env,
    stdio: 'pipe',
  });
  const npx = (...args: string[]) => spawnSync('npx', args, { cwd: project, env, encoding: 'utf8' });

  const unbuilt = npx('contrastive', 'doctor');
  assert.equal(unbuilt.status, 0, unbuilt.stderr);
  assert.match(
    unbuilt.stdout,
    /native engine: none \(addon not built .*; run: npx contrastive build-native\)/,
  );

  const build = npx(...BUILD_NATIVE_COMMAND.split(' ').slice(1));
  assert.equal(build.status, 0, `${build.stdout}\n${build.stderr}`);
  assert.match(build.stdout, /built the native engine/);
  assert.ok(existsSync(join(project, 'node_modules/tfjs-contrastive/native/build/contrastive_native.node')));

  const built = npx('contrastive', 'doctor');
  assert.equal(built.status, 0, built.stderr);
  assert.match(built.stdout, /ok\s+wasm .*native engine: OpenBLAS/);
  assert.match(built.stdout, /matrix products:\s+native (oneDNN sgemm|OpenBLAS)/);
  assert.match(built.stdout, /convolutions:\s+native (oneDNN|im2col \+ OpenBLAS)/);
  assert.match(built.stdout, /runs use: wasm/);
});
