import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_PREFERENCE, type BackendName, useBackend } from './backend.js';
import { nativeStatus } from './native.js';

/** What {@link describeEngine} found. */
export interface EngineReport {
  /** The backend `useBackend('auto')` picks. */
  chosen: BackendName;
  /** Each known backend and whether it loads, with the reason when it does not. */
  backends: { name: BackendName; available: boolean; detail: string }[];
  /** Human-readable lines, as `contrastive doctor` prints them. */
  lines: string[];
}

/** Probes every known backend and reports which one runs will use, and why. */
export async function describeEngine(): Promise<EngineReport> {
  const backends: EngineReport['backends'] = [];
  for (const name of BACKEND_PREFERENCE) {
    try {
      await useBackend(name);
      backends.push({ name, available: true, detail: describeBackend(name) });
    } catch (error) {
      backends.push({ name, available: false, detail: (error as Error).message });
    }
  }
  const chosen = await useBackend('auto');
  const lines = [
    `node ${process.version}, tfjs-core ${tf.version_core}, ${process.platform}/${process.arch}`,
    ...backends.map((b) => `  ${b.available ? 'ok  ' : 'no  '} ${b.name.padEnd(11)} ${b.detail}`),
    `runs use: ${chosen}`,
  ];
  return { chosen, backends, lines };
}

/** One line about the active backend, for the start of every run. */
export function activeEngineLine(): string {
  const name = tf.getBackend() as BackendName;
  return `${name}: ${describeBackend(name)}; tfjs-core ${tf.version_core}, node ${process.version}`;
}

function describeBackend(name: BackendName): string {
  if (name === 'wasm') {
    const flags = tf.env();
    const simd = flags.getBool('WASM_HAS_SIMD_SUPPORT');
    const threads = flags.getBool('WASM_HAS_MULTITHREAD_SUPPORT');
    const native = nativeStatus();
    return `WebAssembly${simd ? ' + SIMD' : ''}${threads ? ' + threads' : ', single-threaded'}; matrix products: ${native.available ? `native ${native.detail}` : `wasm (native engine: ${native.detail})`}`;
  }
  if (name === 'cpu') return 'plain JavaScript kernels (slowest; always available)';
  return 'TensorFlow C library through @tensorflow/tfjs-node';
}
