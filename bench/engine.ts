/**
 * Engine benchmarks (issues 7 and 15), each in our engine and in PyTorch where `/usr/bin/python3 -c
 * 'import torch'` works (2 threads), the anchor, in the same run. PyTorch runs twice: with Debian's
 * jemalloc preloaded (`LD_PRELOAD=…/libjemalloc.so.2`, when installed: on this VM a fresh page
 * costs ~10 µs, which glibc malloc pays on every step) and plain; ratios are against the faster
 * of the two, and each line says which. Prints times, peak RSS and ratios.
 *
 * W1: an MLP head 512→512→128 on [1024, 512] features + SupCon, forward + backward + Adam step,
 * with the library's optimiser and tfjs-layers, on wasm with the native engine, wasm without it,
 * and cpu. W1-user: the same model as a library user writes it (README style): stock
 * `tf.train.adam`, `tf.relu(tf.add(tf.matMul(x, w), b))` layers, `supConLoss(z [1024, 1, 128],
 * labels [1024])`. W2: the small ResNet-style CNN on [256 × 2 views, 28, 28, 1] + HiMulConE, full
 * step, with oneDNN convolutions, with im2col + OpenBLAS ones, and without the addon.
 * Convolutions: GFLOP/s of each kind (forward, backward data, backward weights) at W2's shapes, per
 * native path, against the GEMM rate measured here (the best of a few large OpenBLAS sgemms).
 *
 * W4 (`--w4`, ~25 minutes on 2 cores): one full epoch of HiMulConE on Fashion-MNIST (60k images,
 * 2 augmented views, batch 256) — `contrastive train` as a user runs it, against the same loop
 * (same network, loss, optimiser and augmentations written with torch ops) in PyTorch.
 *
 *   node dist/bench/engine.js [--steps 10] [--skip-cpu] [--skip-fallbacks] [--w4]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { DEBIAN_FASHION_MNIST_DIR } from '../src/data/fashionMnist.js';
import { nativeConvPath, setOneDnnConvolutions } from '../src/engine/kernels/conv.js';
import { loadNative, ompWaitPolicyDefaulted } from '../src/engine/native.js';
import { type BackendName, hiMulConLoss, Rng, supConLoss, useBackend } from '../src/index.js';
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
  const paths: [string, boolean][] = [];
  if (setOneDnnConvolutions(true)?.startsWith('oneDNN')) paths.push([nativeConvPath()!, true]);
  setOneDnnConvolutions(false);
  paths.push(['im2col + OpenBLAS', false]);
  const kinds = ['forward', 'backward data', 'backward weights'] as const;
  const totals = new Map<string, { flops: number; ms: number }>();
  for (const [pathName, onednn] of paths) {
    setOneDnnConvolutions(onednn);
    console.log(`  ${pathName}`);
    for (const c of W2_CONVS) {
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

/** W4 in our engine: one epoch of `contrastive train` (conv, HiMulConE, batch 256 × 2 views). */
function w4Ours(): { ms: number; bestMs: number; rssMiB: number } {
  const out = join(mkdtempSync(join(tmpdir(), 'contrastive-w4-')), 'run');
  const cli = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
  const args = [
    'train',
    '--method',
    'himulcone',
    '--encoder',
    'conv',
    '--epochs',
    '1',
    '--batch-size',
    '256',
  ];
  args.push(
    '--views',
    '2',
    '--eval-every',
    '0',
    '--data-dir',
    FASHION_MNIST_DIR,
    '--out',
    out,
    '--seed',
    '0',
  );
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, cli, ...args], { encoding: 'utf8' });
  const ms = performance.now() - t0;
  rmSync(dirname(out), { recursive: true, force: true });
  if (r.status !== 0) throw new Error(`W4: contrastive train failed:\n${r.stderr}`);
  return { ms, bestMs: ms, rssMiB: Number(r.stderr.trim().split('\n').pop()) / 1024 };
}

/** Debian's jemalloc, preloaded into PyTorch when present. */
const JEMALLOC = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
].find(existsSync);
const PYTHON = '/usr/bin/python3';

interface Timing {
  label: string;
  /** Median. */
  ms: number;
  /** Best step (the same as `ms` where only one run is timed). */
  bestMs: number;
  rssMiB: number;
}

/** A child's or PyTorch's last stdout line: `median best`. */
function parseTimes(stdout: string): { ms: number; bestMs: number } {
  const [ms, best] = stdout.trim().split('\n').pop()!.trim().split(/\s+/).map(Number);
  return { ms, bestMs: best ?? ms };
}

/** PyTorch's time for one script, plain and with jemalloc; null where PyTorch is not installed. */
interface TorchTimings {
  plain: Timing | null;
  jemalloc: Timing | null;
}

/** The environment PyTorch runs in: the user's, without the OpenMP wait policy our engine defaulted. */
function torchEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (ompWaitPolicyDefaulted()) delete env.OMP_WAIT_POLICY;
  return env;
}

/** Runs `script` under /usr/bin/time; null when it fails (no python, no torch). */
function python(script: string, label: string, preload?: string): Timing | null {
  if (!existsSync(PYTHON)) return null;
  const r = spawnSync('/usr/bin/time', ['-f', '%M', PYTHON, '-c', script], {
    encoding: 'utf8',
    env: { ...torchEnvironment(), OMP_NUM_THREADS: '2', ...(preload ? { LD_PRELOAD: preload } : {}) },
  });
  return r.status === 0
    ? { label, ...parseTimes(r.stdout), rssMiB: Number(r.stderr.trim().split('\n').pop()) / 1024 }
    : null;
}

function torch(script: string): TorchTimings {
  return {
    jemalloc: JEMALLOC ? python(script, 'PyTorch 1.13 + jemalloc (2 threads)', JEMALLOC) : null,
    plain: python(script, 'PyTorch 1.13, glibc malloc (2 threads)'),
  };
}

/** One line saying which PyTorch this is and whether its convolutions use oneDNN (MKL-DNN). */
function torchConfig(): string {
  const r = spawnSync(
    PYTHON,
    [
      '-c',
      'import torch,re; c=torch.__config__.show(); m=re.search(r"MKL-DNN v([0-9.]+)",c); print(torch.__version__, "USE_MKLDNN=ON" if "USE_MKLDNN=ON" in c else "USE_MKLDNN=OFF", m.group(1) if m else "")',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0)
    return 'PyTorch: not available (/usr/bin/python3 -c "import torch" failed); ratios skipped';
  const [version, mkldnn, dnnlVersion] = r.stdout.trim().split(' ');
  return `PyTorch ${version}, ${mkldnn}${dnnlVersion ? ` (oneDNN/MKL-DNN ${dnnlVersion})` : ''}; jemalloc: ${JEMALLOC ?? 'not installed (apt install libjemalloc2)'}`;
}

function print(title: string, rows: Timing[], anchor: TorchTimings, unit = 'ms/step'): void {
  console.log(title);
  const torchRows = [anchor.jemalloc, anchor.plain].filter((t): t is Timing => t !== null);
  // the anchor is PyTorch at its best: the faster (by median) of jemalloc and plain
  const best = torchRows.length ? torchRows.reduce((a, b) => (b.ms < a.ms ? b : a)) : null;
  const which = best === anchor.jemalloc ? 'PyTorch + jemalloc' : 'PyTorch plain';
  for (const r of [...rows, ...torchRows]) {
    const ratio = best
      ? `${(r.ms / best.ms).toFixed(2)}× ${which} (best steps: ${(r.bestMs / best.bestMs).toFixed(2)}×)`
      : 'PyTorch not available';
    console.log(
      `  ${r.label.padEnd(44)} ${r.ms.toFixed(1).padStart(8)} ${unit} (best ${r.bestMs.toFixed(1).padStart(7)})  peak RSS ${r.rssMiB.toFixed(0).padStart(5)} MiB  ${ratio}`,
    );
  }
}

async function main() {
  const self = fileURLToPath(import.meta.url);
  if (process.argv.includes('--child')) {
    const workload = arg('workload', 'w1');
    if (workload === 'conv') {
      convRates();
      return;
    }
    const run = workload === 'w2' ? w2 : workload === 'w1user' ? w1User : w1;
    const times = await run(arg('child', 'wasm') as BackendName);
    console.log(times.median, times.best);
    return;
  }
  // each configuration in its own process, so RSS and kernel registrations do not mix
  const measure = (label: string, env: NodeJS.ProcessEnv, backend: string, workload = 'w1'): Timing => {
    const r = spawnSync(
      '/usr/bin/time',
      [
        '-f',
        '%M',
        process.execPath,
        self,
        '--child',
        backend,
        '--workload',
        workload,
        '--steps',
        String(steps),
      ],
      { env: { ...process.env, ...env }, encoding: 'utf8' },
    );
    const rssMiB = Number(r.stderr.trim().split('\n').pop()) / 1024;
    return { label, ...parseTimes(r.stdout), rssMiB };
  };
  const fallbacks = !process.argv.includes('--skip-fallbacks');
  const native = loadNative();
  console.log(
    `ours: wasm + ${native ? `native engine (convolutions: ${native.convPath()})` : 'no native engine'}`,
  );
  console.log(torchConfig());
  // other processes on a 2-core machine move every figure: say how busy it was
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  console.log(`load average at start: ${load()}`);
  const w1rows = [measure('tfjs wasm + native', {}, 'wasm')];
  if (fallbacks) w1rows.push(measure('tfjs wasm (no native)', { CONTRASTIVE_NATIVE: '0' }, 'wasm'));
  if (!process.argv.includes('--skip-cpu')) w1rows.push(measure('tfjs cpu', {}, 'cpu'));
  print(
    `W1: MLP 512→512→128 on [1024, 512] + SupCon, fwd+bwd+Adam, median of ${steps} steps`,
    w1rows,
    torch(PYTORCH_W1),
  );
  const userRows = [measure('tfjs wasm + native', {}, 'wasm', 'w1user')];
  if (fallbacks)
    userRows.push(measure('tfjs wasm (no native)', { CONTRASTIVE_NATIVE: '0' }, 'wasm', 'w1user'));
  print(
    'W1-user: the same MLP as a user writes it (tf.train.adam, matMul/add/relu), supConLoss(z [1024, 1, 128])',
    userRows,
    torch(PYTORCH_W1_USER),
  );
  const w2rows = [
    measure(`tfjs wasm + native (${native?.convPath().split(' (')[0] ?? 'none'})`, {}, 'wasm', 'w2'),
  ];
  if (native?.convPath().startsWith('oneDNN'))
    w2rows.push(measure('tfjs wasm + native (im2col + OpenBLAS)', { CONTRASTIVE_ONEDNN: '0' }, 'wasm', 'w2'));
  if (fallbacks) w2rows.push(measure('tfjs wasm (no native)', { CONTRASTIVE_NATIVE: '0' }, 'wasm', 'w2'));
  print(
    `W2: small ResNet-style CNN on [${W2_IMAGES} × 2 views, 28, 28, 1] + HiMulConE, full step`,
    w2rows,
    torch(PYTORCH_W2),
  );
  const conv = spawnSync(process.execPath, [self, '--child', 'wasm', '--workload', 'conv'], {
    encoding: 'utf8',
  });
  process.stdout.write(conv.stdout);
  if (process.argv.includes('--w4')) {
    if (!existsSync(join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'))) {
      console.log(
        `W4: skipped, full Fashion-MNIST not found in ${FASHION_MNIST_DIR} (apt install dataset-fashion-mnist)`,
      );
      return;
    }
    print(
      'W4: one epoch of HiMulConE on Fashion-MNIST (60k images × 2 views, batch 256), wall time of the whole run',
      [{ label: 'contrastive train (wasm + native)', ...w4Ours() }],
      torch(PYTORCH_W4),
      'ms/epoch',
    );
  }
}

await main();
