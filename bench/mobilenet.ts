/**
 * MobileNetV2 training step (issue: native depthwise convolutions): the library's
 * `mobileNetV2Encoder` (widthMultiplier 1) on [16, 224, 224, 3], forward + backward + SGD update of
 * a mean-square loss on its features, on wasm with the native engine and on tfjs-cpu, each in its
 * own process; and the same network written in PyTorch (2 threads), plus torchvision's full
 * `mobilenet_v2` for reference, where `/usr/bin/python3 -c 'import torch'` works. Then the
 * depthwise layers alone at the network's shapes: oneDNN's grouped convolution against the direct
 * loops, forward and both gradients.
 *
 *   node dist/bench/mobilenet.js [--steps 5] [--cpu-steps 1] [--skip-cpu] [--layers-only]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { setOneDnnConvolutions } from '../src/engine/kernels/conv.js';
import { nativeDepthwiseCounts } from '../src/engine/kernels/depthwise.js';
import { loadNative } from '../src/engine/native.js';
import { type BackendName, useBackend } from '../src/index.js';
import { mobileNetV2Encoder } from '../src/models/backbones.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const BATCH = 16;
const SIZE = 224;

/** Median and best wall time of `count` calls of `step`, after one warm-up call (none with `warm` false). */
function stepTimes(step: () => void, count: number, warm = true): { median: number; best: number } {
  if (warm) step();
  const times: number[] = [];
  for (let s = 0; s < count; s++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], best: times[0] };
}

/** One backend's step time, in this process. */
async function mobileNetStep(backend: BackendName, steps: number): Promise<{ median: number; best: number }> {
  await useBackend(backend);
  const model = mobileNetV2Encoder({ inputShape: [SIZE, SIZE, 3], widthMultiplier: 1, seed: 1 });
  const x = tf.randomUniform([BATCH, SIZE, SIZE, 3], 0, 1, 'float32', 2);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const optimizer = tf.train.sgd(1e-3);
  const step = () => {
    const loss = optimizer.minimize(
      () => tf.mean(tf.square(model.apply(x, { training: true }) as tf.Tensor)) as tf.Scalar,
      true,
      variables,
    )!;
    loss.dataSync();
    loss.dispose();
  };
  // tfjs-cpu takes minutes per step: no warm-up there
  const times = stepTimes(step, steps, backend !== 'cpu');
  optimizer.dispose();
  model.dispose();
  x.dispose();
  return times;
}

/** The depthwise layers of the network at batch 16 (input [H, W, C], stride). */
const DEPTHWISE_SHAPES: [number, number, number, number][] = [
  [112, 112, 32, 1],
  [112, 112, 96, 2],
  [56, 56, 144, 1],
  [56, 56, 144, 2],
  [28, 28, 192, 1],
  [28, 28, 192, 2],
  [14, 14, 384, 1],
  [14, 14, 576, 1],
];

/** Best ms per call of each depthwise kernel at each shape, oneDNN against the direct loops. */
async function depthwiseLayers(): Promise<void> {
  await useBackend('wasm');
  console.log(
    'depthwise layers, batch 16, 3×3, same (best ms of 7 calls: forward / input grad / filter grad)',
  );
  for (const [h, w, c, s] of DEPTHWISE_SHAPES) {
    const x = tf.randomNormal([BATCH, h, w, c]) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, c, 1]) as tf.Tensor4D;
    const attrs = { strides: [s, s], pad: 'same', dilations: [1, 1], dataFormat: 'NHWC' };
    const dy = tf.depthwiseConv2d(x, f, s, 'same');
    const run = {
      forward: () => tf.depthwiseConv2d(x, f, s, 'same'),
      input: () =>
        tf.engine().runKernel(
          'DepthwiseConv2dNativeBackpropInput',
          { dy, filter: f },
          {
            ...attrs,
            inputShape: x.shape,
          },
        ) as tf.Tensor,
      filter: () =>
        tf.engine().runKernel(
          'DepthwiseConv2dNativeBackpropFilter',
          { x, dy },
          {
            ...attrs,
            filterShape: f.shape,
          },
        ) as tf.Tensor,
    };
    const cells: string[] = [];
    for (const onednn of [true, false]) {
      setOneDnnConvolutions(onednn);
      const ms = Object.values(run).map(
        (k) =>
          // wasm kernels run synchronously: no dataSync (copying a 77 MB result out would dominate)
          stepTimes(() => k().dispose(), 7).best,
      );
      // the filter gradient takes the direct loops either way (native/depthwise.c)
      cells.push(`${onednn ? 'oneDNN*' : 'direct '} ${ms.map((v) => v.toFixed(1).padStart(6)).join(' /')}`);
    }
    setOneDnnConvolutions(true);
    console.log(`  [${h}, ${w}, ${c}] stride ${s}:  ${cells.join('    ')}`);
    tf.dispose([x, f, dy]);
  }
  console.log(
    `  * the filter gradient: direct loops there too; calls: ${JSON.stringify(nativeDepthwiseCounts())}`,
  );
}

/** The library's network in PyTorch (same layers, training-mode batch norm), and torchvision's. */
const TORCH_SCRIPT = `
import sys, time, torch, torch.nn as nn, torchvision
torch.set_num_threads(2); torch.manual_seed(1)
def cbr(i, o, k, s, g=1, relu=True):
    layers = [nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o, eps=1e-3, momentum=0.01)]
    return layers + ([nn.ReLU6()] if relu else [])
class Block(nn.Module):
    def __init__(self, i, o, t, s):
        super().__init__()
        h = i * t
        self.f = nn.Sequential(*((cbr(i, h, 1, 1) if t != 1 else []) + cbr(h, h, 3, s, h) + cbr(h, o, 1, 1, relu=False)))
        self.res = s == 1 and i == o
    def forward(self, x):
        return x + self.f(x) if self.res else self.f(x)
def ours():
    layers, c = cbr(3, 32, 3, 2), 32
    for t, o, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 2, 2), (6, 96, 2, 1)]:
        for r in range(n):
            layers.append(Block(c, o, t, s if r == 0 else 1)); c = o
    return nn.Sequential(*layers, *cbr(c, 640, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
net = ours() if sys.argv[1] == 'ours' else torchvision.models.mobilenet_v2().features
x = torch.rand(${BATCH}, 3, ${SIZE}, ${SIZE})
opt = torch.optim.SGD(net.parameters(), 1e-3)
def step():
    opt.zero_grad(); loss = net(x).square().mean(); loss.backward(); opt.step()
step(); times = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter(); step(); times.append((time.perf_counter() - t0) * 1e3)
times.sort(); print(times[len(times) // 2], times[0])
`;

function torchStep(which: 'ours' | 'torchvision', steps: number): string {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) return 'no /usr/bin/python3';
  // the OpenMP wait policy ours runs with (PASSIVE unless set): spinning threads slow PyTorch
  // 10-20× on a busy machine (bench/engine.ts)
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OMP_NUM_THREADS: '2',
    OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE',
  };
  const r = spawnSync(python, ['-c', TORCH_SCRIPT, which, String(steps)], { encoding: 'utf8', env });
  if (r.status !== 0) return `failed (${r.stderr.trim().split('\n').pop()})`;
  const [median, best] = r.stdout.trim().split(/\s+/).map(Number);
  return `${median.toFixed(0)} ms/step (best ${best.toFixed(0)})`;
}

async function main() {
  const steps = Number(arg('steps', '5'));
  if (process.argv.includes('--child')) {
    const backend = arg('child', 'wasm') as BackendName;
    const t = await mobileNetStep(backend, backend === 'cpu' ? Number(arg('cpu-steps', '1')) : steps);
    console.log(t.median, t.best);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const child = (backend: string) => {
    const r = spawnSync(process.execPath, [self, '--child', backend, ...process.argv.slice(2)], {
      encoding: 'utf8',
    });
    if (r.status !== 0) return `failed (${r.stderr.trim().split('\n').slice(-3).join(' ')})`;
    const [median, best] = r.stdout.trim().split('\n').pop()!.split(/\s+/).map(Number);
    return `${median.toFixed(0)} ms/step (best ${best.toFixed(0)})`;
  };
  const engine = loadNative();
  if (process.argv.includes('--layers-only')) {
    if (engine) await depthwiseLayers();
    return;
  }
  console.log(
    `MobileNetV2 (mobileNetV2Encoder, widthMultiplier 1), [${BATCH}, ${SIZE}, ${SIZE}, 3], forward + backward + SGD`,
  );
  console.log(`  wasm + native engine (${engine ? engine.convPath() : 'no addon'}): ${child('wasm')}`);
  if (!process.argv.includes('--skip-cpu')) console.log(`  tfjs-cpu: ${child('cpu')}`);
  console.log(`  PyTorch, the same network (2 threads): ${torchStep('ours', steps)}`);
  console.log(`  PyTorch, torchvision mobilenet_v2 features (2 threads): ${torchStep('torchvision', steps)}`);
  if (engine) await depthwiseLayers();
}

await main();
