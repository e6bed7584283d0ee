/** What one progress update shows. */
export interface ProgressState {
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  /** Step within the current epoch (1-based). */
  stepInEpoch: number;
  loss: number;
  levelLosses?: number[];
  samplesPerSecond: number;
  /** Share (0–1) of the recent wall time spent waiting for data; shown as `data N%`. */
  dataWaitShare?: number;
  /** Seconds until the run ends, estimated from the recent speed. */
  etaSeconds: number;
}

/**
 * Progress on the terminal: one redrawn line with a bar on a TTY, and plain log lines (every
 * `logEvery` steps) when the output is a file or a pipe.
 */
export class ProgressReporter {
  private lastLength = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly interactive = Boolean(stream.isTTY),
  ) {}

  update(s: ProgressState, log: boolean): void {
    const levels = s.levelLosses ? ` levels ${s.levelLosses.map((l) => l.toFixed(3)).join('/')}` : '';
    const text = `epoch ${s.epoch}/${s.epochs} step ${s.stepInEpoch}/${s.stepsPerEpoch} loss ${s.loss.toFixed(4)}${levels} ${Math.round(s.samplesPerSecond)} samples/s${s.dataWaitShare === undefined ? '' : ` data ${(100 * s.dataWaitShare).toFixed(s.dataWaitShare < 0.1 ? 1 : 0)}%`} ETA ${formatDuration(s.etaSeconds)}`;
    if (this.interactive) {
      const width = 20;
      const filled = Math.round((width * s.stepInEpoch) / s.stepsPerEpoch);
      const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`;
      this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.lastLength - line.length))}`);
      this.lastLength = line.length;
    } else if (log) {
      this.stream.write(`${text}\n`);
    }
  }

  /** A line that must stay (epoch summaries, warnings): ends the redrawn line first. */
  message(text: string): void {
    if (this.interactive && this.lastLength > 0) {
      this.stream.write('\n');
      this.lastLength = 0;
    }
    this.stream.write(`${text}\n`);
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}
