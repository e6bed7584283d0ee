import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ContrastiveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { sha256Hex } from '../io/checksum.js';
import { faultPoint } from '../io/faults.js';

/**
 * Saves a layers model to `dir/model.json` + `dir/weights.bin`: the standard tfjs layout, so
 * `tf.loadLayersModel('file://dir/model.json')` (tfjs-node) or a browser `fetch` of the folder
 * loads it. Works in plain Node without tfjs-node; each file is written atomically.
 */
export async function saveLayersModel(model: tfl.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData as ArrayBuffer;
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
        convertedBy: null,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        // tfjs keeps userDefinedMetadata as is; loadLayersModelFromDir verifies the checksum
        userDefinedMetadata: { tfjsContrastive: { weightsSha256: sha256Hex(new Uint8Array(weightData)) } },
      };
      // weights first: model.json, written last, is what makes the folder a complete model
      await writeFileAtomic(join(dir, 'weights.bin'), new Uint8Array(weightData));
      faultPoint('model-weights-written');
      await writeFileAtomic(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/**
 * Loads a model saved by {@link saveLayersModel} (or any tfjs layers model folder). When the
 * model carries a weights checksum (ours do), a mismatch is an error naming the folder.
 */
export async function loadLayersModelFromDir(dir: string): Promise<tfl.LayersModel> {
  const jsonPath = join(dir, 'model.json');
  let json: {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
    userDefinedMetadata?: { tfjsContrastive?: { weightsSha256?: string } };
  };
  try {
    json = JSON.parse(await readFile(jsonPath, 'utf8'));
  } catch (error) {
    throw new ContrastiveError(
      `loadLayersModelFromDir: cannot read ${jsonPath}: ${(error as Error).message}`,
    );
  }
  const buffers: Uint8Array[] = [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  if (!json || typeof json.modelTopology !== 'object' || !Array.isArray(json.weightsManifest)) {
    throw new ContrastiveError(
      `loadLayersModelFromDir: ${jsonPath} is not a tfjs layers model (no modelTopology / weightsManifest).`,
    );
  }
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      checkWeightPath(jsonPath, p);
      buffers.push(
        await readFile(join(dir, p)).catch((error: NodeJS.ErrnoException) => {
          throw new ContrastiveError(
            `loadLayersModelFromDir: cannot read ${join(dir, p)}: ${error.code ?? error.message}.`,
          );
        }),
      );
    }
    specs.push(...group.weights);
  }
  const total = buffers.reduce((s, b) => s + b.length, 0);
  const weightData = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.length;
  }
  const expected = json.userDefinedMetadata?.tfjsContrastive?.weightsSha256;
  if (expected !== undefined && sha256Hex(weightData) !== expected) {
    throw new ContrastiveError(
      `loadLayersModelFromDir: the weights in ${dir} are damaged (checksum mismatch with model.json); they cannot be trusted.`,
    );
  }
  return tfl
    .loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData: weightData.buffer,
      }),
    )
    .catch((error: Error) => {
      throw new ContrastiveError(
        `loadLayersModelFromDir: cannot build the model in ${dir}: ${error.message}`,
      );
    });
}

/**
 * A model.json's weight file must be a plain relative path inside its folder: a forged
 * `../../secret` is refused, never read (or published by `export-web`).
 */
export function checkWeightPath(jsonPath: string, path: unknown): void {
  if (
    typeof path !== 'string' ||
    isAbsolute(path) ||
    path.split(/[\\/]/).some((part) => part === '..' || part === '')
  )
    throw new ContrastiveError(
      `${jsonPath} names weight file ${JSON.stringify(path)}, which is not a plain path inside its folder; refusing to read it.`,
    );
}
