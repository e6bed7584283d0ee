import { TRAIN_OPTIONS, type TrainConfig } from '../../train/config.js';
import { defineCommand } from '../args.js';

/** `contrastive train --method himulcone --data fashion-mnist --epochs 20 --out runs/fm-hmce`. */
export const trainCommand = defineCommand({
  name: 'train',
  summary:
    'Train an embedding model (ce, simclr, supcon, himulcon, hicone, himulcone, moco, sane) into a run folder.',
  options: TRAIN_OPTIONS,
  async run({ options, given }) {
    const values: Readonly<Record<string, unknown>> = options;
    const { ContrastiveError } = await import('../../errors.js');
    const { readConfigFile, resolveTrainConfig } = await import('../../train/config.js');
    const { ProgressReporter } = await import('../../train/progress.js');
    const { train } = await import('../../run/train.js');
    let config: TrainConfig;
    if (options.resume === true || options.resumeFrom !== undefined) {
      // only what was asked for: every other option comes from the checkpoint
      const fromFile = typeof options.config === 'string' ? await readConfigFile(options.config) : {};
      const requested = {
        ...fromFile,
        ...Object.fromEntries([...given].map((name) => [name, values[name]])),
      };
      if (!requested.out)
        throw new ContrastiveError('train: --resume needs --out: the run folder to continue.');
      config = { ...requested, resume: true } as unknown as TrainConfig;
    } else {
      config = await resolveTrainConfig(options, given);
    }
    // Ctrl-C / SIGTERM: stop after this step with a checkpoint; a second Ctrl-C exits at once
    const progress = new ProgressReporter();
    const controller = new AbortController();
    const onSignal = () => {
      if (controller.signal.aborted) process.exit(130);
      progress.message('stopping: writing a checkpoint after this step (press Ctrl-C again to abort)');
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const result = await train(config, { progress, signal: controller.signal });
      return result.interrupted ? 130 : 0;
    } finally {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
  },
});
