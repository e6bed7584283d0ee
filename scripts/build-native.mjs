#!/usr/bin/env node
// Builds the optional native addon (native/blas.c against OpenBLAS) with the system compiler.
// Never fails the install: when the compiler or OpenBLAS is missing it prints one line saying
// why and exits 0; the library then runs on wasm (or cpu).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'native', 'build', 'contrastive_native.node');
const headers = join(root, 'node_modules', 'node-api-headers', 'include');
const cblas = ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/cblas.h', '/usr/include/openblas/cblas.h'].find(existsSync);

function skip(why) {
  console.log(`tfjs-contrastive: native BLAS engine not built (${why}); using the wasm backend.`);
  process.exit(0);
}

if (process.env.CONTRASTIVE_NATIVE === '0') skip('CONTRASTIVE_NATIVE=0');
if (!existsSync(join(headers, 'node_api.h'))) skip('node-api-headers is not installed');
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
mkdirSync(dirname(out), { recursive: true });
const temp = `${out}.tmp`;
const compile = (extra) =>
  execFileSync(
    cc,
    ['-O3', '-fno-trapping-math', ...extra, '-shared', '-fPIC', '-std=c11', `-I${headers}`, `-I${dirname(cblas)}`, '-DNODE_GYP_MODULE_NAME=contrastive_native', '-o', temp, join(root, 'native', 'blas.c'), '-lopenblas', '-lm'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
try {
  // OpenMP spreads the fused loss over the cores; without it (no libgomp) the addon is single-threaded there
  let threads = 'OpenMP';
  try {
    compile(['-fopenmp']);
  } catch {
    threads = 'no OpenMP';
    compile(['-fopenmp-simd']);
  }
  renameSync(temp, out);
  console.log(`tfjs-contrastive: built the native BLAS engine (${cc}, OpenBLAS, ${threads}): ${out}`);
} catch (error) {
  skip(`compiling native/blas.c failed: ${String(error.stderr ?? error.message).split('\n')[0]}`);
}
