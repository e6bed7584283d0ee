/**
 * Engine benchmarks (issues 7, 15, 19 and 22): our engine against PyTorch at its best on the same
 * machine, in one run. Each configuration runs in its own process; ours and PyTorch alternate over
 * `--rounds` rounds (ours first in odd rounds, last in even ones), so a change in the machine's
 * load falls on both; each workload prints the median (of the rounds' medians) and the best step
 * of each, the ratios of ours to the anchor by both, peak RSS, each process's CPU time over wall
 * time (≈ 2 when it had its 2 threads' cores, far less on a busy machine) and the load average
 * before and after. The anchor is PyTorch 1.13 (`/usr/bin/python3`, 2 threads) with Debian's
 * jemalloc preloaded and its page decay off (`LD_PRELOAD=…/libjemalloc.so.2
 * MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1`: on this VM every fresh page costs ~10 µs);
 * plain glibc PyTorch runs once, for information. Both sides run OpenMP with the same wait policy
 * (`PASSIVE` unless the environment sets one). `torch.__config__.show()`'s key lines are printed once.
 *
 * W1: an MLP head 512→512→128 on [1024, 512] features + SupCon, forward + backward + Adam step,
 * with the library's optimiser and tfjs-layers. W1-user: the same model as a library user writes
 * it (README style): stock `tf.train.adam`, `tf.relu(tf.add(tf.matMul(x, w), b))` layers,
 * `supConLoss(z [1024, 1, 128], labels [1024])`. W2: the small ResNet-style CNN on
 * [256 × 2 views, 28, 28, 1] + HiMulConE, full step. MobileNetV2: a fine-tuning step at 224 px,
 * `--mobilenet-batch` (64) images × 2 views, nsfwjs's MobileNetV2 (`--mobilenet-model`, default
 * /tmp/models/mobilenet_v2, written by scripts/nsfwjs-models.mjs) against torchvision's
 * `mobilenet_v2`, the last blocks trained (block_15, block_16, Conv_1 = torchvision's
 * features[16:]), the rest frozen. `--fallbacks` adds, once each, wasm without the addon and W2
 * on im2col + OpenBLAS. Then GFLOP/s of each convolution at W2's shapes per native path
 * (`--skip-conv` to skip).
 *
 * W4 (`--w4`, ~25 minutes a side on 2 cores; `--w4-rounds`, default 1): one full epoch of
 * HiMulConE on Fashion-MNIST (60k images, 2 augmented views, batch 256) — `contrastive train` as a
 * user runs it, against the same loop (same network, loss, optimiser and augmentations written
 * with torch ops) in PyTorch.
 *
 *   node dist/bench/engine.js [--rounds 5] [--steps 10] [--only w1,w1user,w2,mobilenet]
 *     [--mobilenet-batch 64] [--mobilenet-steps 3] [--fallbacks] [--skip-conv] [--w4]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { DEBIAN_FASHION_MNIST_DIR } from '../src/data/fashionMnist.js';
import {
  nativeConvPath,
  setOneDnnConvolutions,
  setPointwiseConvolutions,
} from '../src/engine/kernels/conv.js';
import { loadNative } from '../src/engine/native.js';
import { type BackendName, hiMulConLoss, Rng, supConLoss, useBackend } from '../src/index.js';
import { freezeLayer, loadBackbone } from '../src/models/backbones.js';
import { ContrastiveModel } from '../src/models/contrastiveModel.js';
import { projectionHead, smallConvEncoder } from '../src/models/encoders.js';
import { Optimizer } from '../src/train/optimizers.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const steps = Number(arg('steps', '10'));
/** Images per W2 step (each in 2 views), as issue 7 specifies. */
const W2_IMAGES = 256;
const FASHION_MNIST_DIR = DEBIAN_FASHION_MNIST_DIR;

/** Step times: the median, and the best (on a busy machine, closer to what the code can do). */
interface StepTimes {
  median: number;
  best: number;
}

/** Median and best wall time of `count` calls of `step`, after one warm-up call. */
function medianStepMs(step: () => void, count: number): StepTimes {
  step();
  const times: number[] = [];
  for (let s = 0; s < count; s++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], best: times[0] };
}

/** One W2 measurement: the small ResNet-style CNN on 256 images × 2 views + HiMulConE. */
async function w2(backend: BackendName): Promise<StepTimes> {
  await useBackend(backend);
  const rng = new Rng(2);
  const n = W2_IMAGES;
  const x = tf.tensor4d(
    Float32Array.from({ length: 2 * n * 784 }, () => rng.next()),
    [2 * n, 28, 28, 1],
  );
  const labels = Array.from({ length: n }, () => {
    const fine = rng.int(10);
    return [fine % 2, fine % 6, fine];
  });
  const model = new ContrastiveModel(
    smallConvEncoder({ inputShape: [28, 28, 1] }),
    projectionHead({ inputDim: 128 }),
  );
  const optimizer = new Optimizer(model.trainableVariables, { kind: 'adam' });
  const step = () => {
    const { loss } = optimizer.step(() => {
      const z = model.project(model.embed(x, true), true);
      return hiMulConLoss(tf.transpose(tf.reshape(z, [2, n, -1]), [1, 0, 2]), labels, {
        variant: 'hmce',
        temperature: 0.1,
      });
    }, 1e-3);
    loss.dataSync();
    loss.dispose();
  };
  const ms = medianStepMs(step, Math.max(3, Math.floor(steps / 2)));
  optimizer.dispose();
  model.dispose();
  x.dispose();
  return ms;
}

/** One W1 measurement in this process. */
async function w1(backend: BackendName): Promise<StepTimes> {
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
  const ms = medianStepMs(step, steps);
  optimizer.dispose();
  model.dispose();
  x.dispose();
  return ms;
}

/** W1 as a library user writes it (README style): stock Adam, matMul/add/relu layers, one view. */
async function w1User(backend: BackendName): Promise<StepTimes> {
  await useBackend(backend);
  const rng = new Rng(1);
  const rows = 1024;
  const randn = (shape: [number, number], scale: number) =>
    tf.tensor2d(
      Float32Array.from({ length: shape[0] * shape[1] }, () => scale * rng.normal()),
      shape,
    );
  const x = randn([rows, 512], 1);
  const labels = Array.from({ length: rows }, () => rng.int(100));
  const w1 = tf.variable(randn([512, 512], 1 / Math.sqrt(512)));
  const b1 = tf.variable(tf.zeros([512]));
  const w2 = tf.variable(randn([512, 128], 1 / Math.sqrt(512)));
  const b2 = tf.variable(tf.zeros([128]));
  const optimizer = tf.train.adam(1e-3);
  const step = () => {
    const loss = optimizer.minimize(() => {
      const h = tf.relu(tf.add(tf.matMul(x, w1), b1));
      const z = tf.add(tf.matMul(h, w2), b2);
      return supConLoss(tf.reshape(z, [rows, 1, 128]), labels, { temperature: 0.1 });
    }, true)!;
    loss.dataSync();
    loss.dispose();
  };
  const ms = medianStepMs(step, steps);
  optimizer.dispose();
  tf.dispose([x, w1, b1, w2, b2]);
  return ms;
}

/** One 2-D convolution of W2: input [n, h, w, cin], filter k × k × cin × cout, stride s, 'same'. */
interface ConvShape {
  label: string;
  n: number;
  h: number;
  cin: number;
  cout: number;
  k: number;
  s: number;
}

/** W2's convolutions (smallConvEncoder on 28 × 28 × 1, 512 images: 256 × 2 views). */
const W2_CONVS: ConvShape[] = [
  { label: 'stem 3×3 1→32 @28', n: 512, h: 28, cin: 1, cout: 32, k: 3, s: 1 },
  { label: '3×3 32→32 @28', n: 512, h: 28, cin: 32, cout: 32, k: 3, s: 1 },
  { label: '3×3/2 32→64 @28', n: 512, h: 28, cin: 32, cout: 64, k: 3, s: 2 },
  { label: '3×3 64→64 @14', n: 512, h: 14, cin: 64, cout: 64, k: 3, s: 1 },
  { label: '1×1/2 32→64 @28', n: 512, h: 28, cin: 32, cout: 64, k: 1, s: 2 },
  { label: '3×3/2 64→128 @14', n: 512, h: 14, cin: 64, cout: 128, k: 3, s: 2 },
  { label: '3×3 128→128 @7', n: 512, h: 7, cin: 128, cout: 128, k: 3, s: 1 },
  { label: '1×1/2 64→128 @14', n: 512, h: 14, cin: 64, cout: 128, k: 1, s: 2 },
];

/**
 * GFLOP/s of each convolution kind at W2's shapes on each native path, and the machine's GEMM
 * rate (best of a few large sgemms through the same addon), printed as a table.
 */
function convRates(): void {
  const engine = loadNative();
  if (!engine) {
    console.log('Convolutions: the native engine is not built; nothing to measure');
    return;
  }
  const best = (f: () => void, reps: number) => {
    f();
    let min = Number.POSITIVE_INFINITY;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      f();
      min = Math.min(min, performance.now() - t0);
    }
    return min;
  };
  const filled = (size: number) =>
    Float32Array.from({ length: size }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const engineGemm = engine.gemmPath();
  // the machine's GEMM rate: the best of a few large sgemms, through each library the addon has
  let peak = 0;
  let peakBy = '';
  for (const oneDnnGemm of [false, true]) {
    engine.setGemmPath(oneDnnGemm);
    for (const [m, n, k] of [
      [1024, 1024, 1024],
      [2048, 1024, 1024],
      [4096, 512, 512],
    ]) {
      const [a, b, c] = [filled(m * k), filled(k * n), new Float32Array(m * n)];
      const rate =
        (2 * m * n * k) / best(() => engine.sgemm(false, false, 1, m, n, k, a, 0, b, 0, c), 5) / 1e6;
      if (rate > peak) [peak, peakBy] = [rate, engine.gemmPath()];
    }
  }
  engine.setGemmPath(false);
  // matrix products at W1's shapes (forward, both gradients): OpenBLAS against oneDNN's sgemm
  const gemmShapes: [string, boolean, boolean, number, number, number][] = [
    ['x·W1 [1024,512]·[512,512]', false, false, 1024, 512, 512],
    ['h·W2 [1024,512]·[512,128]', false, false, 1024, 128, 512],
    ['dW1 = xᵀ·dh', true, false, 512, 512, 1024],
    ['dh = dz·W2ᵀ', false, true, 1024, 512, 128],
  ];
  engine.setGemmPath(false);
  const gemmPaths = [engine.gemmPath()];
  engine.setGemmPath(true);
  if (engine.gemmPath() !== gemmPaths[0]) gemmPaths.push(engine.gemmPath());
  console.log(`Matrix products at W1's shapes, GFLOP/s (best of 5); the engine uses ${engineGemm}:`);
  for (const [label, ta, tb, m, n, k] of gemmShapes) {
    const [a, b, c] = [filled(m * k), filled(k * n), new Float32Array(m * n)];
    const cells = gemmPaths.map((path) => {
      engine.setGemmPath(path !== 'OpenBLAS');
      const ms = best(() => engine.sgemm(ta, tb, 1, m, n, k, a, 0, b, 0, c), 5);
      return `${path} ${((2 * m * n * k) / ms / 1e6).toFixed(0).padStart(4)}`;
    });
    console.log(`  ${label.padEnd(28)} ${cells.join('   ')}`);
  }
  engine.setGemmPath(engineGemm !== 'OpenBLAS');
  console.log(
    `Convolutions at W2's shapes, GFLOP/s (best of 5) and % of the GEMM rate measured here, ${peak.toFixed(0)} GFLOP/s (${peakBy}, m·n·k ≥ 2^28):`,
  );
  // [name, oneDNN on, the pointwise form on (1×1 only: the engine's default for them)]
  const paths: [string, boolean, boolean][] = [];
  if (setOneDnnConvolutions(true)?.startsWith('oneDNN')) paths.push([nativeConvPath()!, true, false]);
  setOneDnnConvolutions(false);
  paths.push(['im2col + OpenBLAS', false, false]);
  if (setPointwiseConvolutions(true))
    paths.push([`pointwise: one ${engine.gemmPath()} (1×1 only)`, true, true]);
  const kinds = ['forward', 'backward data', 'backward weights'] as const;
  const totals = new Map<string, { flops: number; ms: number }>();
  for (const [pathName, onednn, pointwise] of paths) {
    setOneDnnConvolutions(onednn);
    setPointwiseConvolutions(pointwise);
    console.log(`  ${pathName}`);
    for (const c of W2_CONVS) {
      if (pointwise && c.k !== 1) continue;
      const pad = Math.floor((c.k - 1) / 2);
      const out = Math.floor((c.h + 2 * pad - c.k) / c.s) + 1;
      const shape = [c.n, c.h, c.h, c.cin, out, out, c.cout, c.k, c.k, c.s, c.s, pad, pad];
      const x = filled(c.n * c.h * c.h * c.cin);
      const w = filled(c.k * c.k * c.cin * c.cout);
      const dy = filled(c.n * out * out * c.cout);
      const flops = 2 * c.n * out * out * c.cout * c.k * c.k * c.cin;
      const cells = kinds.map((kind) => {
        // native modes: 0 forward (x, w), 1 filter gradient (x, dy), 2 input gradient (dy, w)
        const [mode, p, q, result] =
          kind === 'forward'
            ? [0, x, w, new Float32Array(dy.length)]
            : kind === 'backward weights'
              ? [1, x, dy, new Float32Array(w.length)]
              : [2, dy, w, new Float32Array(x.length)];
        const ms = best(() => engine.conv(...shape, mode, p, q, null, false, result, 16 * 2 ** 20), 5);
        const key = `${pathName}|${kind}`;
        const total = totals.get(key) ?? { flops: 0, ms: 0 };
        totals.set(key, { flops: total.flops + flops, ms: total.ms + ms });
        const rate = flops / ms / 1e6;
        return `${kind} ${rate.toFixed(0).padStart(4)} (${((100 * rate) / peak).toFixed(0).padStart(3)} %)`;
      });
      console.log(`    ${c.label.padEnd(20)} ${cells.join('   ')}`);
    }
    const all = kinds.map((kind) => {
      const t = totals.get(`${pathName}|${kind}`)!;
      const rate = t.flops / t.ms / 1e6;
      return `${kind} ${rate.toFixed(0).padStart(4)} (${((100 * rate) / peak).toFixed(0).padStart(3)} %)`;
    });
    console.log(`    ${'all, by time'.padEnd(20)} ${all.join('   ')}`);
  }
  setOneDnnConvolutions(true);
  setPointwiseConvolutions(true);
}

const PYTORCH_W2 = `
import time, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(2); torch.manual_seed(2)
n=${W2_IMAGES}; x=torch.rand(2*n,1,28,28); fine=torch.randint(0,10,(n,)); labels=torch.stack([fine%2,fine%6,fine],1)
def block(cin,cout,s):
    class B(nn.Module):
        def __init__(s_):
            super().__init__(); s_.c1=nn.Conv2d(cin,cout,3,s,1,bias=False); s_.b1=nn.BatchNorm2d(cout)
            s_.c2=nn.Conv2d(cout,cout,3,1,1,bias=False); s_.b2=nn.BatchNorm2d(cout)
            s_.sc=nn.Sequential(nn.Conv2d(cin,cout,1,s,bias=False),nn.BatchNorm2d(cout)) if (s!=1 or cin!=cout) else nn.Identity()
        def forward(s_,x): return F.relu(s_.b2(s_.c2(F.relu(s_.b1(s_.c1(x)))))+s_.sc(x))
    return B()
net=nn.Sequential(nn.Conv2d(1,32,3,1,1,bias=False),nn.BatchNorm2d(32),nn.ReLU(),block(32,32,1),block(32,64,2),block(64,128,2),
    nn.AdaptiveAvgPool2d(1),nn.Flatten(),nn.Linear(128,128),nn.ReLU(),nn.Linear(128,128))
opt=torch.optim.Adam(net.parameters(),1e-3)
def level_loss(f,mask,t=0.1):
    m=mask.repeat(2,2); eye=torch.eye(2*n); m=m*(1-eye)
    logits=(f@f.T/t).masked_fill(eye.bool(),-1e9); logp=logits-torch.logsumexp(logits,1,keepdim=True)
    return -((m*logp).sum(1)/m.sum(1).clamp(min=1)).mean()
def hmce(z):
    f=F.normalize(z,dim=1); total=0; prev=None; L=3
    for c in range(L-1,-1,-1):
        mask=(labels[:,None,:c+1]==labels[None,:,:c+1]).all(-1).float()
        l=level_loss(f,mask); l=l if prev is None else torch.max(l,prev); prev=l
        total=total+2**(1/(L-c))*l
    return total/L
def step():
    opt.zero_grad(); loss=hmce(net(x)); loss.backward(); opt.step()
step(); ts=[]
for _ in range(max(3, ${steps}//2)):
    t=time.perf_counter(); step(); ts.append((time.perf_counter()-t)*1000)
ts.sort(); print(ts[len(ts)//2], ts[0])
`;

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
ts.sort(); print(ts[len(ts)//2], ts[0])
`;

const PYTORCH_W1_USER = `
import time, torch
torch.set_num_threads(2); torch.manual_seed(1)
rows=1024; x=torch.randn(rows,512); labels=torch.randint(0,100,(rows,))
model=torch.nn.Sequential(torch.nn.Linear(512,512),torch.nn.ReLU(),torch.nn.Linear(512,128))
opt=torch.optim.Adam(model.parameters(),1e-3)
def supcon(z,labels,t=0.1):
    f=torch.nn.functional.normalize(z,dim=1); m=(labels[:,None]==labels[None,:]).float()
    eye=torch.eye(rows); m=m*(1-eye)
    logits=(f@f.T/t).masked_fill(eye.bool(),-1e9); logp=logits-torch.logsumexp(logits,1,keepdim=True)
    return -((m*logp).sum(1)/m.sum(1).clamp(min=1)).mean()
def step():
    opt.zero_grad(); loss=supcon(model(x),labels); loss.backward(); opt.step()
step(); ts=[]
for _ in range(${steps}):
    t=time.perf_counter(); step(); ts.append((time.perf_counter()-t)*1000)
ts.sort(); print(ts[len(ts)//2], ts[0])
`;

const PYTORCH_W4 = `
import gzip, time, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(2); torch.manual_seed(0)
def idx(p, off): return np.frombuffer(gzip.open(p).read(), np.uint8, offset=off)
root='${FASHION_MNIST_DIR}'
X=torch.tensor(idx(root+'/train-images-idx3-ubyte.gz',16).reshape(-1,1,28,28).astype(np.float32)/255)
Y=torch.tensor(idx(root+'/train-labels-idx1-ubyte.gz',8).astype(np.int64))
COARSE=torch.tensor([0,0,0,0,0,1,0,1,1,1]); MID=torch.tensor([0,1,0,2,3,4,0,4,5,4])
t0=time.perf_counter()
def block(cin,cout,s):
    class B(nn.Module):
        def __init__(s_):
            super().__init__(); s_.c1=nn.Conv2d(cin,cout,3,s,1,bias=False); s_.b1=nn.BatchNorm2d(cout)
            s_.c2=nn.Conv2d(cout,cout,3,1,1,bias=False); s_.b2=nn.BatchNorm2d(cout)
            s_.sc=nn.Sequential(nn.Conv2d(cin,cout,1,s,bias=False),nn.BatchNorm2d(cout)) if (s!=1 or cin!=cout) else nn.Identity()
        def forward(s_,x): return F.relu(s_.b2(s_.c2(F.relu(s_.b1(s_.c1(x)))))+s_.sc(x))
    return B()
enc=nn.Sequential(nn.Conv2d(1,32,3,1,1,bias=False),nn.BatchNorm2d(32),nn.ReLU(),block(32,32,1),block(32,64,2),block(64,128,2),
    nn.AdaptiveAvgPool2d(1),nn.Flatten())
head=nn.Sequential(nn.Linear(128,128),nn.ReLU(),nn.Linear(128,128))
opt=torch.optim.AdamW(list(enc.parameters())+list(head.parameters()),1e-3,weight_decay=1e-4)
def augment(x):
    n=x.shape[0]; scale=0.6+0.4*torch.rand(n); logr=np.log(4/3)*(2*torch.rand(n)-1)
    bh=(scale/logr.exp()).sqrt().clamp(max=1); bw=(scale*logr.exp()).sqrt().clamp(max=1)
    cy=(1-bh)*torch.rand(n)+bh/2; cx=(1-bw)*torch.rand(n)+bw/2; flip=torch.where(torch.rand(n)<0.5,-1.0,1.0)
    theta=torch.zeros(n,2,3); theta[:,0,0]=bw*flip; theta[:,0,2]=2*cx-1; theta[:,1,1]=bh; theta[:,1,2]=2*cy-1
    x=F.grid_sample(x,F.affine_grid(theta,x.shape,align_corners=False),align_corners=False)
    m=x.mean((1,2,3),keepdim=True); gain=1+0.2*(2*torch.rand(n,1,1,1)-1); shift=0.2*(2*torch.rand(n,1,1,1)-1)
    x=(x-m)*gain+m+shift+0.02*torch.randn_like(x)
    mask=torch.ones(n,1,28,28); cy=torch.randint(0,28,(n,)); cx=torch.randint(0,28,(n,))
    for i in range(n): mask[i,:,max(0,cy[i]-3):cy[i]+4,max(0,cx[i]-3):cx[i]+4]=0
    return (x*mask).clamp(0,1)
def level_loss(f,mask,n,t=0.1):
    m=mask.repeat(2,2); eye=torch.eye(2*n); m=m*(1-eye)
    logits=(f@f.T/t).masked_fill(eye.bool(),-1e9); logp=logits-torch.logsumexp(logits,1,keepdim=True)
    return -((m*logp).sum(1)/m.sum(1).clamp(min=1)).mean()
def hmce(z,labels,n):
    f=F.normalize(z,dim=1); total=0; prev=None; L=3
    for c in range(L-1,-1,-1):
        mask=(labels[:,None,:c+1]==labels[None,:,:c+1]).all(-1).float()
        l=level_loss(f,mask,n); l=l if prev is None else torch.max(l,prev); prev=l
        total=total+2**(1/(L-c))*l
    return total/L
order=torch.randperm(len(X))
for s in range(0,len(X)-255,256):
    i=order[s:s+256]; x=X[i]; y=Y[i]; labels=torch.stack([COARSE[y],MID[y],y],1)
    z=head(enc(torch.cat([augment(x),augment(x)])))
    opt.zero_grad(); loss=hmce(z,labels,len(i)); loss.backward(); opt.step()
print((time.perf_counter()-t0)*1000)
`;

/** The arguments of W4's `contrastive train` (conv encoder, HiMulConE, batch 256 × 2 views, one epoch). */
const W4_ARGS = [
  'train',
  '--method',
  'himulcone',
  '--encoder',
  'conv',
  '--epochs',
  '1',
  '--batch-size',
  '256',
  '--views',
  '2',
  '--eval-every',
  '0',
  '--data-dir',
  FASHION_MNIST_DIR,
  '--seed',
  '0',
];

/** W4 in our engine, in this (child) process: the wall time of one `contrastive train` epoch. */
function w4Ours(): number {
  const out = mkdtempSync(join(tmpdir(), 'contrastive-w4-'));
  const cli = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
  try {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [cli, ...W4_ARGS, '--out', join(out, 'run')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`W4: contrastive train failed:\n${r.stderr}`);
    return performance.now() - t0;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** The MobileNetV2 to fine-tune: nsfwjs's (Keras MobileNetV2, 224 px), written out by scripts/nsfwjs-models.mjs. */
const MOBILENET_DIR = arg('mobilenet-model', '/tmp/models/mobilenet_v2');
/** Images per fine-tuning step (each in 2 views): 64 as issue 19 specifies; smaller for quick runs. */
const MOBILENET_BATCH = Number(arg('mobilenet-batch', '64'));
const MOBILENET_STEPS = Number(arg('mobilenet-steps', '3'));

/**
 * A functional model split for fine-tuning from layer `first` to layer `last`: `frozen` (the
 * layers before `first`, frozen, their batch norm in inference mode) and `tail` (from `first` to
 * `last`, trainable), wired to the tensors that cross the cut (a residual block's input, e.g.).
 */
function splitForFineTuning(
  model: tfl.LayersModel,
  first: string,
  last: string,
): { frozen: tfl.LayersModel; tail: tfl.LayersModel } {
  type Node = { inputTensors: tfl.SymbolicTensor[]; outputTensors: tfl.SymbolicTensor[] };
  const node = (l: tfl.layers.Layer) => (l as unknown as { inboundNodes: Node[] }).inboundNodes[0];
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const k = layers.findIndex((l) => l.name === first);
  const end = layers.findIndex((l) => l.name === last);
  if (k < 0 || end < k) throw new Error(`splitForFineTuning: no layers ${first}…${last} in ${model.name}`);
  const frozenLayers = new Set(layers.slice(0, k));
  for (const l of frozenLayers) freezeLayer(l);
  const crossing: tfl.SymbolicTensor[] = [];
  for (const l of layers.slice(k, end + 1))
    for (const t of node(l).inputTensors)
      if (frozenLayers.has(t.sourceLayer) && !crossing.includes(t)) crossing.push(t);
  const frozen = tfl.model({ inputs: model.inputs, outputs: crossing });
  const wired = new Map<tfl.SymbolicTensor, tfl.SymbolicTensor>();
  const inputs = crossing.map((t) => {
    const input = tfl.input({ shape: t.shape.slice(1) as number[] });
    wired.set(t, input);
    return input;
  });
  let out = inputs[0];
  for (const l of layers.slice(k, end + 1)) {
    const n = node(l);
    const ins = n.inputTensors.map((t) => wired.get(t)!);
    out = l.apply(ins.length === 1 ? ins[0] : ins) as tfl.SymbolicTensor;
    wired.set(n.outputTensors[0], out);
  }
  return { frozen, tail: tfl.model({ inputs, outputs: out }) };
}

/**
 * The MobileNetV2 fine-tuning step in our engine: nsfwjs's model (Keras MobileNetV2), block_15,
 * block_16 and Conv_1 trained, the rest frozen (inference-mode batch norm) and run outside the
 * gradient tape, as PyTorch runs parameters without `requires_grad` (nothing saved for backward);
 * SupCon on the average-pooled `out_relu` features of 2 views; the library's Adam.
 */
async function mobileNetFineTune(backend: BackendName): Promise<StepTimes> {
  await useBackend(backend);
  const rng = new Rng(3);
  const n = MOBILENET_BATCH;
  const model = (await loadBackbone('bench', MOBILENET_DIR)) as tfl.LayersModel;
  const { frozen, tail } = splitForFineTuning(model, 'block_15_expand', 'out_relu');
  const x = tf.randomUniform([2 * n, 224, 224, 3], 0, 1, 'float32', 2);
  const labels = Array.from({ length: n }, () => rng.int(Math.max(2, Math.floor(n / 4))));
  const optimizer = new Optimizer(
    tail.trainableWeights.map((w) => w.read() as tf.Variable),
    { kind: 'adam' },
  );
  const step = () => {
    const h = tf.tidy(() => frozen.apply(x, { training: false }) as tf.Tensor);
    const { loss } = optimizer.step(() => {
      const z = tf.mean(tail.apply(h, { training: true }) as tf.Tensor4D, [1, 2]);
      return supConLoss(tf.transpose(tf.reshape(z, [2, n, -1]), [1, 0, 2]), labels, { temperature: 0.1 });
    }, 1e-3);
    loss.dataSync();
    tf.dispose([loss, h]);
  };
  const ms = medianStepMs(step, MOBILENET_STEPS);
  optimizer.dispose();
  model.dispose();
  x.dispose();
  return ms;
}

/** The MobileNetV2 fine-tuning step in PyTorch: torchvision's network, the same frozen/trainable split. */
const pytorchMobileNet = (batch: number, count: number) => `
import time, torch, torch.nn.functional as F, torchvision
torch.set_num_threads(2); torch.manual_seed(1)
B=${batch}; net=torchvision.models.mobilenet_v2().features
# features[16:] are Keras's block_15, block_16 and Conv_1: trained; the rest frozen (inference-mode batch norm)
frozen, tail = net[:16], net[16:]
for p in frozen.parameters(): p.requires_grad_(False)
frozen.eval(); tail.train()
x=torch.rand(2*B,3,224,224); labels=torch.randint(0,max(2,B//4),(B,))
opt=torch.optim.Adam(tail.parameters(),1e-3)
def supcon(z,t=0.1):
    f=F.normalize(z,dim=1); m=(labels[:,None]==labels[None,:]).float().repeat(2,2)
    eye=torch.eye(2*B); m=m*(1-eye)
    logits=(f@f.T/t).masked_fill(eye.bool(),-1e9); logp=logits-torch.logsumexp(logits,1,keepdim=True)
    return -((m*logp).sum(1)/m.sum(1).clamp(min=1)).mean()
def step():
    opt.zero_grad(); loss=supcon(F.adaptive_avg_pool2d(tail(frozen(x)),1).flatten(1)); loss.backward(); opt.step()
step(); ts=[]
for _ in range(${count}):
    t=time.perf_counter(); step(); ts.append((time.perf_counter()-t)*1000)
ts.sort(); print(ts[len(ts)//2], ts[0])
`;

/** Debian's jemalloc, preloaded into PyTorch when present. */
const JEMALLOC = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
].find(existsSync);
/**
 * jemalloc's page decay off: freed pages stay mapped, so no step pays for fresh pages (~10 µs each
 * on this VM); with decay on, PyTorch's W2 step took 1.34 s instead of 0.7–0.9 s (issue 22).
 */
const JEMALLOC_CONF = 'dirty_decay_ms:-1,muzzy_decay_ms:-1';
const PYTHON = '/usr/bin/python3';

/** What one process of a round measured. */
interface Sample {
  /** Median and best step (the whole run's wall time for W4), ms. */
  ms: number;
  bestMs: number;
  rssMiB: number;
  /** CPU time (user + system) over wall time: near the thread count on an idle machine. */
  cpuPerWall: number;
}

/** Runs a command under `/usr/bin/time`; its last stdout line is `median best`; null when it fails. */
function sampleProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Sample | null {
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S %e', file, ...args], {
    encoding: 'utf8',
    env,
    maxBuffer: 64 * 2 ** 20,
  });
  const stats = r.stderr.trim().split('\n').pop()?.trim().split(/\s+/).map(Number) ?? [];
  const line = r.stdout.trim().split('\n').pop()?.trim() ?? '';
  const [ms, best] = line.split(/\s+/).map(Number);
  if (r.status !== 0 || !Number.isFinite(ms) || stats.length !== 4) {
    const why = r.stderr.trim().split('\n').slice(-4, -1).join(' | ');
    console.log(`    (${file === PYTHON ? 'python' : 'node'} ${args[0]}… failed: ${why.slice(0, 300)})`);
    return null;
  }
  const [rssKiB, user, system, wall] = stats;
  return { ms, bestMs: best ?? ms, rssMiB: rssKiB / 1024, cpuPerWall: wall > 0 ? (user + system) / wall : 0 };
}

/**
 * The environment PyTorch runs in: 2 OpenMP threads with the wait policy our engine runs with
 * (`PASSIVE` unless the environment sets one): on a busy machine spinning OpenMP threads made
 * PyTorch's W1 step 10-20× slower (820-1920 ms against 38-163 ms passive, back to back), so the
 * anchor gets the policy that suits a shared machine, as ours does; jemalloc with decay off when
 * `preload`.
 */
function torchEnvironment(preload: boolean): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OMP_NUM_THREADS: '2',
    OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE',
  };
  delete env.LD_PRELOAD;
  delete env.MALLOC_CONF;
  if (preload && JEMALLOC) Object.assign(env, { LD_PRELOAD: JEMALLOC, MALLOC_CONF: JEMALLOC_CONF });
  return env;
}

/** PyTorch's version and the build lines that matter here (oneDNN, BLAS, OpenMP, CPU capability). */
function torchConfig(): string[] {
  const r = spawnSync(
    PYTHON,
    ['-c', 'import torch; print("PyTorch", torch.__version__); print(torch.__config__.show())'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0)
    return ['PyTorch: not available (/usr/bin/python3 -c "import torch" failed); ratios skipped'];
  const lines = r.stdout.split('\n');
  const keep = lines
    .filter((l) => /^PyTorch \d|MKL-DNN|oneDNN|OpenMP|CPU capability/.test(l))
    .map((l) => l.replace(/^\s*-\s*/, '').trim());
  const settings = lines.find((l) => l.includes('Build settings')) ?? '';
  const picked = ['BLAS_INFO', 'LAPACK_INFO', 'USE_MKLDNN', 'USE_OPENMP']
    .map((key) => settings.match(new RegExp(`${key}=[^,]*`))?.[0])
    .filter((s): s is string => s !== undefined);
  return [...keep, picked.join(', ')];
}

/** One configuration of a workload: ours (node) or PyTorch (python), and how to start it. */
interface Contender {
  label: string;
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Runs once (round 1), for information, and takes no part in the ratio. */
  once?: boolean;
  samples: Sample[];
}

/** A workload: our contender first, then PyTorch's anchor (jemalloc, decay off) and the rest. */
interface Workload {
  title: string;
  unit: string;
  contenders: Contender[];
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const loadNow = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/**
 * Runs a workload's contenders over `rounds` rounds, each in its own process, ours and PyTorch
 * alternating (ours first in odd rounds, last in even ones, so a drift in the machine's load
 * falls on both alike), then prints each one's median (of its rounds' medians) and best (of
 * every step), peak RSS, CPU/wall, the ratios of ours to the anchor, and the load around it.
 */
function runWorkload(w: Workload, rounds: number): void {
  const before = loadNow();
  const t0 = performance.now();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? w.contenders : [...w.contenders].reverse();
    for (const c of order) {
      if (c.once && round > 0) continue;
      const s = sampleProcess(c.file, c.args, c.env);
      if (s) c.samples.push(s);
    }
  }
  const minutes = (performance.now() - t0) / 60000;
  console.log(`${w.title}`);
  const summary = (c: Contender) =>
    c.samples.length === 0
      ? null
      : {
          ms: median(c.samples.map((s) => s.ms)),
          bestMs: Math.min(...c.samples.map((s) => s.bestMs)),
          rssMiB: Math.max(...c.samples.map((s) => s.rssMiB)),
          cpuPerWall: median(c.samples.map((s) => s.cpuPerWall)),
        };
  for (const c of w.contenders) {
    const s = summary(c);
    if (!s) {
      console.log(`  ${c.label.padEnd(46)} failed or not available`);
      continue;
    }
    const perRound = c.samples.map((x) => x.ms.toFixed(0)).join(' ');
    console.log(
      `  ${c.label.padEnd(46)} median ${s.ms.toFixed(1).padStart(8)}  best ${s.bestMs.toFixed(1).padStart(8)} ${w.unit}  peak RSS ${s.rssMiB.toFixed(0).padStart(5)} MiB  CPU/wall ${s.cpuPerWall.toFixed(2)}  rounds: ${perRound}`,
    );
  }
  const ours = summary(w.contenders[0]);
  const anchor = summary(w.contenders[1]);
  for (const other of w.contenders.slice(1)) {
    const theirs = summary(other);
    if (!ours || !theirs) continue;
    console.log(
      `  ours / ${other.label}: ${(ours.ms / theirs.ms).toFixed(2)}× by median, ${(ours.bestMs / theirs.bestMs).toFixed(2)}× by best${other === w.contenders[1] && anchor ? '  <- the anchor' : ''}`,
    );
  }
  console.log(`  load average before ${before}, after ${loadNow()}; ${minutes.toFixed(1)} min`);
}

async function main() {
  const self = fileURLToPath(import.meta.url);
  if (process.argv.includes('--child')) {
    const workload = arg('workload', 'w1');
    if (workload === 'conv') {
      convRates();
      return;
    }
    const backend = arg('child', 'wasm') as BackendName;
    if (workload === 'w4') {
      const ms = w4Ours();
      console.log(ms, ms);
      return;
    }
    const times =
      workload === 'mobilenet'
        ? await mobileNetFineTune(backend)
        : await (workload === 'w2' ? w2 : workload === 'w1user' ? w1User : w1)(backend);
    console.log(times.median, times.best);
    return;
  }
  const rounds = Number(arg('rounds', '5'));
  const only = arg('only', 'w1,w1user,w2,mobilenet').split(',');
  const fallbacks = process.argv.includes('--fallbacks');
  const native = loadNative();
  const haveTorch = existsSync(PYTHON);
  console.log(
    `ours: wasm + ${native ? `native engine (convolutions: ${native.convPath()})` : 'no native engine'}; Node ${process.version}`,
  );
  for (const line of torchConfig()) console.log(`  ${line}`);
  console.log(
    `PyTorch's anchor: ${JEMALLOC ? `LD_PRELOAD=${JEMALLOC} MALLOC_CONF=${JEMALLOC_CONF}` : 'glibc malloc (jemalloc not installed: apt install libjemalloc2)'}; plain glibc malloc once, for information; both OMP_NUM_THREADS=2 OMP_WAIT_POLICY=${torchEnvironment(false).OMP_WAIT_POLICY} (ours: ${process.env.OMP_WAIT_POLICY})`,
  );
  console.log(
    `${rounds} rounds, ours and PyTorch alternating, one process each; median = median of the rounds' medians, best = best step of all; CPU/wall = (user + system) / wall of each process (2 threads: ≤ 2)`,
  );
  console.log(`load average at start: ${loadNow()} (${cpus().length} cores)`);
  const node = (workload: string, env: NodeJS.ProcessEnv = {}, extra: string[] = []) => ({
    file: process.execPath,
    args: [self, '--child', 'wasm', '--workload', workload, '--steps', String(steps), ...extra],
    env: { ...process.env, ...env },
    samples: [],
  });
  const torchRows = (script: string): Contender[] =>
    haveTorch
      ? [
          ...(JEMALLOC
            ? [
                {
                  label: 'PyTorch + jemalloc, decay off',
                  file: PYTHON,
                  args: ['-c', script],
                  env: torchEnvironment(true),
                  samples: [],
                },
              ]
            : []),
          {
            label: 'PyTorch, glibc malloc (once)',
            file: PYTHON,
            args: ['-c', script],
            env: torchEnvironment(false),
            once: true,
            samples: [],
          },
        ]
      : [];
  const extraRows = (workload: string): Contender[] =>
    fallbacks
      ? [
          { label: 'tfjs wasm, no addon (once)', ...node(workload, { CONTRASTIVE_NATIVE: '0' }), once: true },
          ...(workload === 'w2' && native?.convPath().startsWith('oneDNN')
            ? [
                {
                  label: 'wasm + im2col + OpenBLAS (once)',
                  ...node(workload, { CONTRASTIVE_ONEDNN: '0' }),
                  once: true,
                },
              ]
            : []),
        ]
      : [];
  const workloads: Record<string, () => Workload | string> = {
    w1: () => ({
      title: 'W1: MLP 512→512→128 on [1024, 512] + SupCon, fwd + bwd + Adam (the library optimiser)',
      unit: 'ms/step',
      contenders: [
        { label: 'ours: tfjs wasm + native', ...node('w1') },
        ...torchRows(PYTORCH_W1),
        ...extraRows('w1'),
      ],
    }),
    w1user: () => ({
      title:
        'W1-user: the same MLP as a user writes it (tf.train.adam, matMul/add/relu), supConLoss(z [1024, 1, 128])',
      unit: 'ms/step',
      contenders: [
        { label: 'ours: tfjs wasm + native', ...node('w1user') },
        ...torchRows(PYTORCH_W1_USER),
        ...extraRows('w1user'),
      ],
    }),
    w2: () => ({
      title: `W2: small ResNet-style CNN on [${W2_IMAGES} × 2 views, 28, 28, 1] + HiMulConE, full step (Adam)`,
      unit: 'ms/step',
      contenders: [
        { label: 'ours: tfjs wasm + native', ...node('w2') },
        ...torchRows(PYTORCH_W2),
        ...extraRows('w2'),
      ],
    }),
    mobilenet: () => {
      if (!existsSync(join(MOBILENET_DIR, 'model.json')))
        return `MobileNetV2 fine-tuning step: skipped, no model at ${MOBILENET_DIR} (npm install --no-save nsfwjs && node scripts/nsfwjs-models.mjs /tmp/models; or --mobilenet-model DIR)`;
      return {
        title: `MobileNetV2 fine-tuning step at 224 px, ${MOBILENET_BATCH} images × 2 views, block_15, block_16 and Conv_1 trained (features[16:] in torchvision), the rest frozen, SupCon on pooled features, Adam, median of ${MOBILENET_STEPS} steps`,
        unit: 'ms/step',
        contenders: [
          {
            label: `ours: nsfwjs MobileNetV2 (${MOBILENET_DIR})`,
            ...node('mobilenet', {}, process.argv.slice(2)),
          },
          ...torchRows(pytorchMobileNet(MOBILENET_BATCH, MOBILENET_STEPS)),
        ],
      };
    },
  };
  for (const key of only) {
    const make = workloads[key];
    if (!make) continue;
    const w = make();
    if (typeof w === 'string') console.log(w);
    else runWorkload(w, rounds);
  }
  if (!process.argv.includes('--skip-conv')) {
    const conv = spawnSync(process.execPath, [self, '--child', 'wasm', '--workload', 'conv'], {
      encoding: 'utf8',
    });
    process.stdout.write(conv.stdout);
  }
  if (process.argv.includes('--w4')) {
    if (!existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'))) {
      console.log(
        `W4: skipped, full Fashion-MNIST not found in ${FASHION_MNIST_DIR} (apt install dataset-fashion-mnist)`,
      );
      return;
    }
    runWorkload(
      {
        title:
          'W4: one epoch of HiMulConE on Fashion-MNIST (60k images × 2 views, batch 256) through `contrastive train`, wall time of the whole run',
        unit: 'ms/epoch',
        contenders: [
          { label: 'ours: contrastive train (wasm + native)', ...node('w4') },
          ...torchRows(PYTORCH_W4),
        ],
      },
      Number(arg('w4-rounds', '1')),
    );
  }
}

await main();
