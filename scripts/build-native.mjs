#!/usr/bin/env node
// Builds the optional native engine (native/*.c: GEMM, convolutions, batch norm, the fused
// log-sum-exp, sums) against OpenBLAS, and oneDNN for the convolutions when libdnnl-dev is
// installed, with the system compiler. Never fails: when the compiler or OpenBLAS is missing it
// prints one line saying why and exits 0; the library then runs on wasm (or cpu). Without oneDNN
// the convolutions use im2col + OpenBLAS.
//
//   node scripts/build-native.mjs [--strict]
//
// It builds into native/build inside this package, where the library loads it from. `--strict`
// (what `npx contrastive build-native`, the command for users who installed the package, passes)
// exits 1 instead of 0 when the engine cannot be built.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const outDir = join(root, 'native', 'build');
const out = join(outDir, 'contrastive_native.node');
const sources = readdirSync(join(root, 'native'))
  .filter((f) => f.endsWith('.c'))
  .sort()
  .map((f) => join(root, 'native', f));
// node-api-headers is a dependency of this package: in its node_modules, or hoisted next to it
const headers = (() => {
  try {
    const dir = join(dirname(createRequire(join(root, 'package.json')).resolve('node-api-headers/package.json')), 'include');
    return existsSync(join(dir, 'node_api.h')) ? dir : undefined;
  } catch {
    return undefined;
  }
})();
const cblas = ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/cblas.h', '/usr/include/openblas/cblas.h'].find(existsSync);
const onednn = ['/usr/include/oneapi/dnnl/dnnl.h', '/usr/local/include/oneapi/dnnl/dnnl.h'].find(existsSync);

function skip(why) {
  const retry = process.env.CONTRASTIVE_NATIVE === '0' ? '' : ' Once that is fixed: npx contrastive build-native';
  console.log(`tfjs-contrastive: native engine not built (${why}); using the wasm backend.${retry}`);
  process.exit(strict ? 1 : 0);
}

if (process.env.CONTRASTIVE_NATIVE === '0') skip('CONTRASTIVE_NATIVE=0');
if (!headers) skip('node-api-headers is not installed');
if (!cblas) skip('OpenBLAS headers not found; install libopenblas-dev');
const cc = ['cc', 'gcc', 'clang'].find((c) => {
  try {
    execFileSync(c, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
if (!cc) skip('no C compiler (cc, gcc or clang)');
mkdirSync(outDir, { recursive: true });
const temp = `${out}.tmp`;
const compile = (extra, libraries) =>
  execFileSync(
    cc,
    ['-O3', '-fno-trapping-math', ...extra, '-shared', '-fPIC', '-std=c11', `-I${headers}`, `-I${dirname(cblas)}`, '-DNODE_GYP_MODULE_NAME=contrastive_native', '-o', temp, ...sources, ...libraries, '-lopenblas', '-lm'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
// oneDNN first, then without it; OpenMP spreads the fused loss over the cores, and without it (no
// libgomp) the addon is single-threaded there
const attempts = [
  ...(onednn && process.env.CONTRASTIVE_ONEDNN !== '0' ? [{ flags: ['-fopenmp', '-DCONTRASTIVE_ONEDNN'], libs: ['-ldnnl'], what: 'oneDNN, OpenMP' }] : []),
  { flags: ['-fopenmp'], libs: [], what: 'OpenMP' },
  { flags: ['-fopenmp-simd'], libs: [], what: 'no OpenMP' },
];
let firstError = null;
for (const { flags, libs, what } of attempts) {
  try {
    compile(flags, libs);
    renameSync(temp, out);
    const convolutions = what.startsWith('oneDNN') ? '' : `; convolutions: im2col + OpenBLAS (${!onednn ? 'install libdnnl-dev for oneDNN' : process.env.CONTRASTIVE_ONEDNN === '0' ? 'oneDNN turned off by CONTRASTIVE_ONEDNN=0' : 'the oneDNN build failed'})`;
    console.log(`tfjs-contrastive: built the native engine (${cc}, OpenBLAS, ${what}${convolutions}): ${out}`);
    process.exit(0);
  } catch (error) {
    firstError ??= String(error.stderr ?? error.message).split('\n')[0];
  }
}
skip(`compiling native/*.c failed: ${firstError}`);
