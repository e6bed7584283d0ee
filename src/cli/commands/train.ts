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
    // Ctrl-C / SIGTERM / SIGHUP (the terminal closed): stop after this step with a checkpoint; a
    // second one leaves after the step in flight without a new checkpoint. The handler only
    // counts — no output, no abort listeners, no process.exit (exiting while worker threads,
    // sharp or a write are mid-call is what corrupted the heap) — and a timer turns the count
    // into the two AbortSignals the library polls between steps.
    const progress = new ProgressReporter();
    const stop = new AbortController();
    const abort = new AbortController();
    let signals = 0;
    let hangups = 0;
    const onSignal = () => {
      signals++;
    };
    const onHangup = () => {
      hangups++;
      signals++;
    };
    let detached = false;
    const watch = setInterval(() => {
      if (hangups > 0 && !detached) {
        // the terminal is gone: writing to it fails (EIO); the run still stops with a checkpoint
        detached = true;
        for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
      }
      if (signals >= 1 && !stop.signal.aborted) {
        progress.message(
          'stopping: writing a checkpoint after this step (press Ctrl-C again to leave without it)',
        );
        stop.abort();
      }
      if (signals >= 2 && !abort.signal.aborted) {
        progress.message('leaving after the step in flight, without a new checkpoint');
        abort.abort();
      }
    }, 25);
    const handled = ['SIGINT', 'SIGTERM'] as const;
    for (const name of handled) process.on(name, onSignal);
    process.on('SIGHUP', onHangup);
    try {
      const result = await train(config, { progress, signal: stop.signal, abort: abort.signal });
      return result.interrupted ? 130 : 0;
    } finally {
      clearInterval(watch);
      for (const name of handled) process.removeListener(name, onSignal);
      process.removeListener('SIGHUP', onHangup);
    }
  },
});
