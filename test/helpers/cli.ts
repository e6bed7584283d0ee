import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EMBEDDED_FASHION_MNIST_DIR } from '../../src/data/fashionMnist.js';
import { Rng } from '../../src/random.js';
import { REPO_ROOT } from './fixtures.js';

/** The built CLI. */
export const BIN = resolve(REPO_ROOT, 'dist/src/cli/bin.js');

/** Runs `contrastive <args>` to completion. */
export function cli(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, ...env },
  });
}

/** Starts `contrastive <args>`; resolves once with its exit status and output. */
export function cliAsync(
  args: string[],
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void,
): Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr += text;
    onStderr?.(stderr, child);
  });
  return new Promise((done) => child.on('exit', (status, signal) => done({ status, signal, stderr })));
}

/** A small, fast supcon run on the embedded Fashion-MNIST subset (MLP, wasm). */
export const SMALL_RUN = [
  '--data-dir',
  EMBEDDED_FASHION_MNIST_DIR,
  '--encoder',
  'mlp',
  '--method',
  'supcon',
  '--train-limit',
  '256',
  '--test-limit',
  '128',
  '--batch-size',
  '32',
  '--embedding-dim',
  '32',
  '--projection-dim',
  '16',
  '--backend',
  'wasm',
  '--log-every',
  '2',
  '--seed',
  '7',
];

/** Asserts-friendly: true when the text holds no stack trace. */
export const hasNoStack = (text: string) => !/\n\s+at [^\n]+:\d+:\d+/.test(text);

/**
 * A labelled CSV feature table: `rows` rows of 6 features around a centre per class, label paths
 * `Clothes/Tops`, `Clothes/Pants`, `Shoes/Sneaker`, `Shoes/Boot` in a `label` column.
 */
export async function writeCsvTable(
  path: string,
  rows: number,
  seed = 1,
  rename?: [string, string],
): Promise<void> {
  const classes = ['Clothes/Tops', 'Clothes/Pants', 'Shoes/Sneaker', 'Shoes/Boot'];
  const rng = new Rng(seed);
  const lines = ['f0,f1,f2,f3,f4,f5,label'];
  for (let i = 0; i < rows; i++) {
    const c = i % classes.length;
    const features = Array.from({ length: 6 }, (_, j) => ((j === c ? 3 : 0) + rng.normal()).toFixed(4));
    const label = rename && classes[c] === rename[0] ? rename[1] : classes[c];
    lines.push(`${features.join(',')},${label}`);
  }
  await writeFile(path, `${lines.join('\n')}\n`);
}
