/**
 * Engine benchmark, W1 of issue 7: an MLP head 512→512→128 on [1024, 512] features + SupCon,
 * forward + backward + Adam step, on each backend — wasm with the native OpenBLAS engine, wasm
 * without it, cpu — and in PyTorch where `/usr/bin/python3 -c 'import torch'` works (2 threads),
 * as the anchor, in the same run. Prints median ms/step, peak RSS and the ratio to PyTorch.
 *
 *   node dist/bench/engine.js [--steps 10] [--skip-cpu]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type BackendName, Rng, supConLoss, useBackend } from '../src/index.js';
import { Optimizer } from '../src/train/optimizers.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const steps = Number(arg('steps', '10'));

/** One W1 measurement in this process: median ms/step. */
async function w1(backend: BackendName): Promise<number> {
  await useBackend(backend);
  const rng = new Rng(1);
  const n = 512; // 512 samples × 2 views = 1024 rows
  const x = tf.tensor2d(
    Float32Array.from({ length: 2 * n * 512 }, () => rng.normal()),
    [2 * n, 512],
  );
  const labels = Array.from({ length: n }, () => rng.int(100));
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [512], units: 512, activation: 'relu' }),
      tfl.layers.dense({ units: 128 }),
    ],
  });
  const optimizer = new Optimizer(
    model.trainableWeights.map((w) => w.read() as tf.Variable),
    { kind: 'adam' },
  );
  const step = () => {
    const { loss } = optimizer.step(() => {
      const z = model.apply(x) as tf.Tensor2D;
      return supConLoss(tf.transpose(tf.reshape(z, [2, n, 128]), [1, 0, 2]), labels, { temperature: 0.1 });
    }, 1e-3);
    loss.dataSync();
    loss.dispose();
  };
  step();
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  optimizer.dispose();
  model.dispose();
  x.dispose();
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

const PYTORCH_W1 = `
import time, torch
torch.set_num_threads(2); torch.manual_seed(1)
n=512; x=torch.randn(2*n,512); labels=torch.randint(0,100,(n,))
model=torch.nn.Sequential(torch.nn.Linear(512,512),torch.nn.ReLU(),torch.nn.Linear(512,128))
opt=torch.optim.Adam(model.parameters(),1e-3)
def supcon(z,labels,t=0.1):
    f=torch.nn.functional.normalize(z,dim=1); m=(labels[:,None]==labels[None,:]).float().repeat(2,2)
    logits=f@f.T/t; eye=torch.eye(2*n); m=m*(1-eye)
    logits=logits.masked_fill(eye.bool(),-1e9); logp=logits-torch.logsumexp(logits,1,keepdim=True)
    return -((m*logp).sum(1)/m.sum(1).clamp(min=1)).mean()
def step():
    opt.zero_grad(); loss=supcon(model(x),labels); loss.backward(); opt.step()
step(); ts=[]
for _ in range(${steps}):
    t=time.perf_counter(); step(); ts.append((time.perf_counter()-t)*1000)
ts.sort(); print(ts[len(ts)//2])
`;

async function main() {
  const self = fileURLToPath(import.meta.url);
  if (process.argv.includes('--child')) {
    console.log(await w1(arg('child', 'wasm') as BackendName));
    return;
  }
  // each configuration in its own process, so RSS and kernel registrations do not mix
  const measure = (label: string, env: NodeJS.ProcessEnv, backend: string) => {
    const r = spawnSync(
      '/usr/bin/time',
      ['-f', '%M', process.execPath, self, '--child', backend, '--steps', String(steps)],
      {
        env: { ...process.env, ...env },
        encoding: 'utf8',
      },
    );
    const ms = Number(r.stdout.trim().split('\n').pop());
    const rssMiB = Number(r.stderr.trim().split('\n').pop()) / 1024;
    return { label, ms, rssMiB };
  };
  const rows = [
    measure('tfjs wasm + native OpenBLAS', {}, 'wasm'),
    measure('tfjs wasm (stock matmul path fixed, no native)', { CONTRASTIVE_NATIVE: '0' }, 'wasm'),
  ];
  if (!process.argv.includes('--skip-cpu')) rows.push(measure('tfjs cpu', {}, 'cpu'));
  const torch = spawnSync('/usr/bin/time', ['-f', '%M', '/usr/bin/python3', '-c', PYTORCH_W1], {
    encoding: 'utf8',
    env: { ...process.env, OMP_NUM_THREADS: '2' },
  });
  const anchor = torch.status === 0 ? Number(torch.stdout.trim()) : Number.NaN;
  if (torch.status === 0)
    rows.push({
      label: 'PyTorch (2 threads)',
      ms: anchor,
      rssMiB: Number(torch.stderr.trim().split('\n').pop()) / 1024,
    });
  console.log(`W1: MLP 512→512→128 on [1024, 512] + SupCon, fwd+bwd+Adam, median of ${steps} steps`);
  for (const r of rows) {
    const ratio = Number.isFinite(anchor)
      ? `${(r.ms / anchor).toFixed(2)}× PyTorch`
      : 'PyTorch not available';
    console.log(
      `${r.label.padEnd(48)} ${r.ms.toFixed(1).padStart(8)} ms/step  peak RSS ${r.rssMiB.toFixed(0).padStart(5)} MiB  ${ratio}`,
    );
  }
}

await main();
