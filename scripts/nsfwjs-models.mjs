// Writes the pretrained models the `nsfwjs` npm package carries (as JS modules holding the
// model.json and base64 weight shards) out as ordinary tfjs model folders, offline:
//   npm install --no-save nsfwjs && node scripts/nsfwjs-models.mjs models/
// gives models/mobilenet_v2 (a Keras-converted layers model, 224 px), models/mobilenet_v2_mid
// (a graph model, 224 px) and models/inception_v3 (layers, 299 px). Their inputs are RGB in
// [0, 1] (nsfwjs divides by 255): train with --backbone-scale unit.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const out = process.argv[2] ?? 'models';
for (const name of ['mobilenet_v2', 'mobilenet_v2_mid', 'inception_v3']) {
  // the package's exports map hides dist/, so its modules are required by file path
  const dir = join(process.cwd(), 'node_modules', 'nsfwjs', 'dist', 'models', name);
  let json;
  try {
    const m = require(`${dir}/model.min.js`);
    json = m.default ?? m;
  } catch {
    console.error(`nsfwjs-models: ${dir} not found; install it first: npm install --no-save nsfwjs`);
    process.exit(1);
  }
  const target = join(out, name);
  mkdirSync(target, { recursive: true });
  for (const group of json.weightsManifest) {
    group.paths = group.paths.map((p) => {
      const shard = require(`${dir}/${p}.min.js`);
      const file = `${p}.bin`;
      writeFileSync(join(target, file), Buffer.from(shard.default ?? shard, 'base64'));
      return file;
    });
  }
  if (json.format === undefined && json.modelTopology?.model_config) json.format = 'layers-model';
  writeFileSync(join(target, 'model.json'), JSON.stringify(json));
  console.log(`wrote ${target} (${json.format ?? 'layers-model'})`);
}
