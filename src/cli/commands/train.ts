import { TRAIN_OPTIONS } from '../../train/config.js';
import type { CommandSpec } from '../args.js';

/** `contrastive train --method himulcone --data fashion-mnist --epochs 20 --out runs/fm-hmce`. */
export const trainCommand: CommandSpec = {
  name: 'train',
  summary:
    'Train an embedding model (ce, simclr, supcon, himulcon, hicone, himulcone, moco, sane) into a run folder.',
  options: TRAIN_OPTIONS,
  async run({ options, given }) {
    const { resolveTrainConfig } = await import('../../train/config.js');
    const { train } = await import('../../train/trainer.js');
    let config = await resolveTrainConfig(options, given);
    if (config.resume) {
      // a resumed run keeps the options it was started with; only --out and --resume come from the command line
      const { readFile } = await import('node:fs/promises');
      const { join } = await import('node:path');
      const saved = JSON.parse(await readFile(join(config.out!, 'config.json'), 'utf8'));
      config = { ...saved, out: config.out, resume: true };
    }
    const result = await train(config);
    if (result.interrupted) process.exitCode = 130;
  },
};
