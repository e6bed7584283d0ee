// tfjs-core's Node bundle registers no gradients; tfjs-layers' Node bundle registers all of them,
// into the global registry every copy of tfjs-core shares. Whatever differentiates imports this.
import '@tensorflow/tfjs-layers';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Batch norm's gradient without `tile`: the stock one tiles `1/sqrt(var + ε)` to the full
 * `[N, H, W, C]` shape before multiplying (2 s of a 8 s CNN step on wasm); broadcasting does the
 * same arithmetic without the copy. Same formulas, same inputs saved.
 */
tf.unregisterGradient('FusedBatchNorm');
tf.registerGradient({
  kernelName: 'FusedBatchNorm',
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dy, saved, attrs) => {
    const { varianceEpsilon } = attrs as unknown as { varianceEpsilon: number };
    const [x, mean, variance, scale] = saved;
    const dyT = dy as tf.Tensor;
    const scaleValue = scale ?? tf.scalar(1);
    const axes = tf.backend_util.getReductionAxes(mean.shape, x.shape);
    const reduce = (t: tf.Tensor) => tf.reshape(mean.rank === 1 ? tf.sum(t, axes) : t, mean.shape);
    const rsqrt = tf.rsqrt(tf.add(variance, varianceEpsilon));
    const dyScaled = tf.mul(dyT, scaleValue);
    return {
      x: () => tf.mul(dyScaled, rsqrt),
      mean: () => reduce(tf.neg(tf.mul(dyScaled, rsqrt))),
      variance: () => reduce(tf.mul(tf.mul(tf.sub(x, mean), dyScaled), tf.mul(tf.pow(rsqrt, 3), -0.5))),
      scale: () => reduce(tf.mul(dyT, tf.mul(tf.sub(x, mean), rsqrt))),
      offset: () => reduce(dyT),
    };
  },
});
