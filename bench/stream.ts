/**
 * Streaming benchmark: `contrastive train --stream on|off` on a synthetic 64 × 64 colour folder,
 * run as the real CLI under `/usr/bin/time -v` (peak RSS). Generates `--images` JPEGs in a
 * temporary folder (or `--keep <dir>`, reused), trains the small colour encoder for `--steps`
 * steps (then SIGINT: the CLI writes a checkpoint and stops), and prints the decode time, the
 * steady-state images/s and the share of each step spent waiting for data (the progress
 * line's `data N%`, averaged over the logged windows after the first), and the peak RSS.
 * A script, never a test.
 *
 *   node dist/bench/stream.js [--images 20000] [--size 64] [--batch 256] [--steps 12]
 *        [--stream on] [--encoder conv] [--backend wasm] [--keep <dir>] [--cache-dir <dir>]
 *
 * `--cache-dir` is passed to the CLI (a second run then reuses the decoded images).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Rng } from '../src/random.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const numImages = Number(arg('images', '20000'));
const size = Number(arg('size', '64'));
const batchSize = Number(arg('batch', '256'));
const steps = Number(arg('steps', '12'));
const stream = arg('stream', 'on');
const encoder = arg('encoder', 'conv');
const backend = arg('backend', 'wasm');
const keep = arg('keep', '');
const cacheDir = arg('cache-dir', '');
const bin = resolve(fileURLToPath(import.meta.url), '../../src/cli/bin.js');

/** `numImages` JPEGs of `size`² in 10 class folders under 2 groups, 4 encoders at a time. */
async function generate(dir: string): Promise<void> {
  for (let c = 0; c < 10; c++)
    await mkdir(join(dir, c < 5 ? 'Clothes' : 'Goods', `class${c}`), { recursive: true });
  const rng = new Rng(1);
  let next = 0;
  const worker = async () => {
    const pixels = Buffer.alloc(size * size * 3);
    while (next < numImages) {
      const i = next++;
      const c = i % 10;
      const tint = [rng.int(256), rng.int(256), rng.int(256)];
      for (let k = 0; k < pixels.length; k++) {
        const p = Math.floor(k / 3);
        pixels[k] = (tint[k % 3] + (p % size) * (c + 1) + Math.floor(p / size) * 2 + rng.int(24)) & 255;
      }
      await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
        .jpeg({ quality: 85 })
        .toFile(join(dir, c < 5 ? 'Clothes' : 'Goods', `class${c}`, `${i}.jpg`));
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

async function countImages(dir: string): Promise<number> {
  if (!existsSync(dir)) return 0;
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.jpg')).length;
}

/** Runs the CLI under `/usr/bin/time -v`; SIGINT to its process group once `steps` steps are logged. */
function runTrain(images: string, out: string): Promise<{ stderr: string; lines: [number, string][] }> {
  const args = [
    bin,
    'train',
    '--data',
    images,
    '--out',
    out,
    '--stream',
    stream,
    '--channels',
    '3',
    '--image-size',
    String(size),
    '--encoder',
    encoder,
    '--batch-size',
    String(batchSize),
    '--method',
    'simclr',
    '--epochs',
    '1',
    '--eval-every',
    '0',
    '--log-every',
    '2',
    '--backend',
    backend,
    ...(cacheDir ? ['--cache-dir', cacheDir] : []),
  ];
  const useTime = existsSync('/usr/bin/time');
  const child = useTime
    ? spawn('/usr/bin/time', ['-v', process.execPath, ...args], { detached: true })
    : spawn(process.execPath, args, { detached: true });
  const t0 = performance.now();
  const lines: [number, string][] = [];
  let stderr = '';
  let buffered = '';
  let stopped = false;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      lines.push([(performance.now() - t0) / 1000, line]);
      const step = /^epoch \d+\/\d+ step (\d+)\//.exec(line);
      if (!stopped && step && Number(step[1]) >= steps && child.pid) {
        stopped = true;
        process.kill(-child.pid, 'SIGINT'); // time(1) ignores it; the CLI checkpoints and stops
      }
    }
  });
  child.stdout.resume();
  return new Promise((done) => child.on('close', () => done({ stderr, lines })));
}

async function main(): Promise<void> {
  const root = keep || (await mkdtemp(join(tmpdir(), 'contrastive-bench-stream-')));
  try {
    const images = join(root, `images-${numImages}-${size}`);
    if ((await countImages(images)) !== numImages) {
      await rm(images, { recursive: true, force: true });
      const t = performance.now();
      await generate(images);
      console.log(
        `generated ${numImages} JPEGs (${size}×${size}×3) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
      );
    }
    const out = join(root, `run-${stream}`);
    await rm(out, { recursive: true, force: true });
    const { stderr, lines } = await runTrain(images, out);
    const at = (pattern: RegExp) => lines.find(([, l]) => pattern.test(l));
    const decoded = at(/decoding the test images into the cache: (\d+)\/\1$/);
    const started = at(/^data: /);
    const trainCount = /(\d+) train \//.exec(started?.[1] ?? '')?.[1];
    console.log(
      `contrastive train --stream ${stream} --encoder ${encoder} --channels 3 --image-size ${size} --batch-size ${batchSize} --backend ${backend} on ${numImages} images (${trainCount ?? '?'} train)`,
    );
    if (decoded)
      console.log(
        `  decoded into the cache by ${decoded[0].toFixed(1)} s (${(numImages / decoded[0]).toFixed(0)} images/s, listing included)`,
      );
    if (started) console.log(`  data listed and decoded (or loaded) by ${started[0].toFixed(1)} s`);
    const firstStep = at(/^epoch \d+\/\d+ step /);
    if (firstStep)
      console.log(`  first step logged at ${firstStep[0].toFixed(1)} s (fingerprint, model set-up, 2 steps)`);
    const windows = lines
      .map(([, l]) => /step (\d+)\/\d+ .* (\d+) samples\/s(?: data ([\d.]+)%)?/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null);
    // the first window holds the first steps' warm-up (kernel set-up, first allocations)
    const steady = windows.slice(1);
    if (steady.length > 0) {
      const mean = (k: number) => steady.reduce((s, m) => s + Number(m[k] ?? 0), 0) / steady.length;
      console.log(
        `  training: ${mean(2).toFixed(0)} images/s, data wait ${mean(3).toFixed(1)} % of the step (mean of ${steady.length} windows of 2 steps after the first; last: ${windows[windows.length - 1][0]})`,
      );
    }
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
    if (rss) console.log(`  peak RSS (/usr/bin/time -v): ${(Number(rss[1]) / 1024).toFixed(0)} MiB`);
    const failed = lines.filter(([, l]) => /error|Error/.test(l));
    if (failed.length) console.log(failed.map(([, l]) => `  ${l}`).join('\n'));
  } finally {
    if (!keep) await rm(root, { recursive: true, force: true });
  }
}

await main();
