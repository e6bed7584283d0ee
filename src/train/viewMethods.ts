import type * as tf from '@tensorflow/tfjs-core';
import { hiMulConLossDetails } from '../losses/hiMulCon.js';
import { ntXentLoss } from '../losses/ntXent.js';
import { supConLoss } from '../losses/supCon.js';
import type { Method, TrainConfig } from './config.js';

/** The methods trained on V augmented views with one encoder. */
export const VIEW_METHODS = [
  'simclr',
  'supcon',
  'himulcon',
  'hicone',
  'himulcone',
] as const satisfies readonly Method[];
export type ViewMethod = (typeof VIEW_METHODS)[number];

export const isViewMethod = (m: Method): m is ViewMethod => (VIEW_METHODS as readonly Method[]).includes(m);

/** A loss value and, for hierarchical methods, the level losses to log (coarsest first). */
export interface MethodLoss {
  loss: tf.Scalar;
  levelLosses?: tf.Scalar[];
}

const VARIANT = { himulcon: 'hmc', hicone: 'hce', himulcone: 'hmce' } as const;

/**
 * The loss of a view method on projections `[N, V, P]` with label rows `[N, L]` (coarsest first):
 * SimCLR ignores the labels, SupCon uses the finest column, the hierarchical methods use all.
 */
export function viewMethodLoss(
  method: ViewMethod,
  projections: tf.Tensor3D,
  labels: number[][],
  config: Pick<TrainConfig, 'temperature' | 'baseTemperature' | 'levelWeights' | 'hierarchyMode'>,
): MethodLoss {
  const temperature = config.temperature;
  switch (method) {
    case 'simclr':
      return { loss: ntXentLoss(projections, { temperature }) };
    case 'supcon':
      return {
        loss: supConLoss(
          projections,
          labels.map((row) => row[row.length - 1]),
          { temperature, baseTemperature: config.baseTemperature ?? temperature },
        ),
      };
    default: {
      const details = hiMulConLossDetails(projections, labels, {
        temperature,
        baseTemperature: config.baseTemperature,
        variant: VARIANT[method],
        levelWeights: config.levelWeights,
        mode: config.hierarchyMode,
      });
      return { loss: details.loss, levelLosses: details.levels.map((l) => l.rawLoss) };
    }
  }
}
