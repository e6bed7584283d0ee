import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ContrastiveModel } from '../../models/contrastiveModel.js';
import { buildModelParts, learningRateScales } from '../buildModel.js';
import type { TrainingMethod } from './types.js';
import { flatLabelLevel, scalarValue, variablesOf } from './viewMethods.js';

/**
 * The cross-entropy baseline: a linear classifier over the backbone's embedding, trained on the
 * finest level. The head is built (so every run saves the same parts) but not trained.
 */
export const ce: TrainingMethod = {
  summary: 'cross-entropy baseline: a linear classifier on the finest level every row knows',
  minViews: 1,
  viewsPerStep: () => 1,
  labels: 'finest',
  async build(config, data) {
    const built = await buildModelParts(config, data);
    const base = built.model;
    const labelLevel = flatLabelLevel(data);
    const numClasses = data.tree.levelSizes[labelLevel];
    const input = tfl.input({ shape: [base.backbone.outputs[0].shape[1] as number] });
    const logits = tfl.layers
      .dense({
        units: numClasses,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: config.seed + 11 }),
      })
      .apply(input) as tfl.SymbolicTensor;
    const classifier = tfl.model({ inputs: input, outputs: logits, name: 'classifier' });
    const model = new ContrastiveModel(base.backbone, base.head, classifier);
    const trainable = [...variablesOf(model.backbone), ...variablesOf(classifier)];
    return { model, trainable, learningRateScales: learningRateScales(trainable, built), labelLevel };
  },
  step({ model, labelLevel }, optimizer, inputs) {
    const level = labelLevel ?? inputs.labels[0].length - 1;
    const numClasses = model.classifier!.outputs[0].shape[1] as number;
    const view = inputs.augment(inputs.x);
    const targets = tf.tidy(() =>
      tf.oneHot(
        tf.tensor1d(
          Int32Array.from(inputs.labels, (row) => row[level]),
          'int32',
        ),
        numClasses,
      ),
    );
    const { loss } = optimizer.step(
      () =>
        tf.losses.softmaxCrossEntropy(
          targets,
          model.classifier!.apply(model.embed(view, true), { training: true }) as tf.Tensor,
        ) as tf.Scalar,
      inputs.learningRate,
    );
    tf.dispose([view, targets]);
    return { loss: scalarValue(loss) };
  },
};
