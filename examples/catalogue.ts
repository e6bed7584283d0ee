/**
 * Train on a catalogue of colour product photos, end to end, with the library's parts: renders
 * Fashion-MNIST items as 64×64 colour photos (random garment colours, varied backgrounds) into a
 * folder tree and a manifest, decodes them once into the streaming image cache, trains a colour
 * encoder (ResNet-18-style by default; mobilenet-v2 needs a backend with depthwise gradients) with SimCLR's colour augmentations and HiMulConE, and
 * prints per-level retrieval on the test photos before and after. A short run on two CPU cores
 * shows the pipeline, not a converged model; raise --steps for that.
 *
 *   node dist/examples/catalogue.js [--out catalogue] [--train 2000] [--test 500] [--size 64]
 *        [--encoder resnet-18|mobilenet-v2|conv] [--steps 60] [--batch 64] [--lr 0.001] [--backend wasm]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { renderFashionCatalogue } from '../src/data/tools/renderCatalogue.js';
import { LabelTree } from '../src/hierarchy/labelTree.js';
import {
  type BackendName,
  buildEncoder,
  colorAugment,
  type EncoderName,
  hiMulConLoss,
  ImageCache,
  projectionHead,
  Rng,
  readManifest,
  retrievalMetrics,
  useBackend,
} from '../src/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const outDir = arg('out', 'catalogue');
const size = Number(arg('size', '64'));
const steps = Number(arg('steps', '60'));
const batchSize = Number(arg('batch', '64'));
const encoderName = arg('encoder', 'resnet-18') as EncoderName;
const log = (text: string) => process.stdout.write(`${text}\n`);

async function main(): Promise<void> {
  await useBackend(arg('backend', 'wasm') as BackendName);
  if (!existsSync(join(outDir, 'train.csv'))) {
    const t = performance.now();
    const made = await renderFashionCatalogue({
      outDir,
      trainItems: Number(arg('train', '2000')),
      testItems: Number(arg('test', '500')),
      size,
    });
    log(
      `rendered ${made.counts.train} + ${made.counts.test} photos into ${outDir}/{train,test}/ and ${outDir}/{train,test}.csv in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
  }
  // the manifest gives files and label paths; the same folder tree would give the same dataset
  const [train, test] = await Promise.all([
    readManifest(join(outDir, 'train.csv')),
    readManifest(join(outDir, 'test.csv')),
  ]);
  const tree = LabelTree.fromPaths([...train.paths, ...test.paths], {
    levelNames: ['group', 'family', 'class'],
  });
  const trainLabels = tree.encode(train.paths);
  const testLabels = tree.encode(test.paths);
  const cacheDir = join(outDir, '.cache');
  let t = performance.now();
  const [trainCache, testCache] = await Promise.all([
    ImageCache.open(train.files, { cacheDir, size: [size, size], channels: 3 }),
    ImageCache.open(test.files, { cacheDir, size: [size, size], channels: 3 }),
  ]);
  log(
    `image cache: ${trainCache.reused && testCache.reused ? 'reused' : 'built'} in ${((performance.now() - t) / 1000).toFixed(1)} s (${cacheDir})`,
  );

  const encoder = await buildEncoder({ encoder: encoderName, seed: 1 }, [size, size, 3]);
  const head = projectionHead({ inputDim: encoder.featureDim, outputDim: 64, seed: 1 });
  log(
    `encoder: ${encoder.source}, ${encoder.model.countParams().toLocaleString()} parameters, ${encoder.featureDim} features`,
  );

  const embedTest = async (): Promise<tf.Tensor2D> => {
    const chunk = 250;
    const parts: tf.Tensor2D[] = [];
    const buffer = new Float32Array(chunk * testCache.imageSize);
    for (let s = 0; s < testCache.count; s += chunk) {
      const rows = Array.from({ length: Math.min(chunk, testCache.count - s) }, (_, k) => s + k);
      await testCache.readRows(rows, buffer);
      parts.push(
        tf.tidy(
          () =>
            encoder.model.predict(
              tf.tensor4d(buffer.subarray(0, rows.length * testCache.imageSize), [
                rows.length,
                size,
                size,
                3,
              ]),
            ) as tf.Tensor2D,
        ),
      );
    }
    const all = tf.concat(parts) as tf.Tensor2D;
    tf.dispose(parts);
    return all;
  };
  const report = async (when: string) => {
    const embeddings = await embedTest();
    const levels = retrievalMetrics(
      embeddings,
      Array.from({ length: testCache.count }, (_, i) => Array.from(testLabels.subarray(i * 3, i * 3 + 3))),
      { recallAt: [1, 5] },
    );
    embeddings.dispose();
    log(
      `${when}: ${levels.map((l, k) => `${tree.levelNames[k]} P@1 ${(100 * l.precisionAt1).toFixed(1)} mAP@R ${(100 * l.mapAtR).toFixed(1)}`).join(' | ')}`,
    );
  };
  await report('before training');

  const rng = new Rng(2);
  const optimizer = tf.train.adam(Number(arg('lr', '0.001')));
  const variables = [...encoder.model.trainableWeights, ...head.trainableWeights].map(
    (w) => w.read() as tf.Variable,
  );
  const batches: Int32Array[] = [];
  while (batches.length < steps) {
    const order = rng.permutation(trainCache.count);
    for (let s = 0; s + batchSize <= order.length && batches.length < steps; s += batchSize)
      batches.push(order.subarray(s, s + batchSize));
  }
  const reader = trainCache.batchReader(batches);
  let waited = 0;
  t = performance.now();
  for (let b = await reader.next(); b; b = await reader.next()) {
    waited += b.waitedMs;
    const indices = Array.from(b.indices);
    const labels = indices.map((i) => Array.from(trainLabels.subarray(i * 3, i * 3 + 3)));
    const images = tf.tensor4d(b.inputs, [indices.length, size, size, 3]);
    const view1 = colorAugment(images, rng, { scale: [0.2, 1] });
    const view2 = colorAugment(images, rng, { scale: [0.2, 1] });
    const cost = optimizer.minimize(
      () => {
        const project = (v: tf.Tensor4D) =>
          head.apply(encoder.model.apply(v, { training: true }), { training: true }) as tf.Tensor2D;
        const features = tf.stack([project(view1), project(view2)], 1);
        return hiMulConLoss(features, labels, { variant: 'hmce', temperature: 0.1 });
      },
      true,
      variables,
    );
    if (b.batch % 10 === 0 || b.batch === steps - 1) {
      const seconds = (performance.now() - t) / 1000;
      log(
        `step ${b.batch + 1}/${steps} loss ${cost?.dataSync()[0].toFixed(4)} (${(((b.batch + 1) * batchSize) / seconds).toFixed(0)} images/s, waited for data ${((100 * waited) / (performance.now() - t)).toFixed(1)} %)`,
      );
    }
    tf.dispose([images, view1, view2]);
    cost?.dispose();
  }
  await report(`after ${steps} steps`);
  optimizer.dispose();
  await Promise.all([trainCache.close(), testCache.close()]);
}

await main();
