import type { ProgressReporter } from './progress.js';

/** One line of a run's `metrics.jsonl`: a logging window of steps, or a whole epoch. */
export interface TrainingRecord {
  kind: 'step' | 'epoch';
  epoch: number;
  /** Optimiser steps done so far. */
  step: number;
  /** Mean loss over the logging window (step) or the epoch. */
  loss: number;
  /** Per-level losses, coarsest first (hierarchical methods). */
  levelLosses?: number[];
  /**
   * HiConE and HiMulConE: per level (coarsest first), the fraction (0–1) of the window's steps at
   * which HiConE's clamp bound, i.e. the level's loss was replaced by a finer level's larger one
   * (`hiConEClampBinds`). The finest level is always 0.
   */
  hiconeClampBinds?: number[];
  learningRate?: number;
  samplesPerSecond?: number;
  /**
   * Share (0–1) of the window's wall time the loop spent waiting for batch inputs (gathering
   * them in memory, or the part of a cache read the prefetch did not hide).
   */
  dataWaitShare?: number;
  /** kNN top-1 accuracy on the test split, when the trainer evaluated at the end of an epoch. */
  knnAccuracy?: number;
  /** Seconds since the run (or this resumed part of it) started. */
  seconds?: number;
}

/**
 * The logging window: sums losses over `logEvery` steps, redraws the progress line after every
 * step, and hands a `step` record to `write` at the end of each window (and of each epoch).
 */
export class LoggingWindow {
  private loss = 0;
  private levels: number[] | null = null;
  private binds: number[] | null = null;
  private steps = 0;
  private samples = 0;
  private dataMs = 0;
  private start = performance.now();
  private readonly runStart = performance.now();

  constructor(
    private readonly progress: ProgressReporter,
    private readonly write: (record: TrainingRecord) => void,
    private readonly logEvery: number,
    private readonly epochs: number,
    private readonly totalSteps: number,
  ) {}

  /** Seconds since the loop started. */
  get elapsed(): number {
    return (performance.now() - this.runStart) / 1000;
  }

  /** Adds a finished step; logs when the window is full or the epoch ends. */
  add(s: {
    epoch: number;
    step: number;
    stepInEpoch: number;
    stepsPerEpoch: number;
    batchSize: number;
    loss: number;
    levelLosses?: number[];
    clampBinds?: boolean[];
    learningRate: number;
    /** Milliseconds the step waited for its batch's inputs. */
    dataMs?: number;
  }): void {
    this.loss += s.loss;
    this.steps++;
    this.samples += s.batchSize;
    this.dataMs += s.dataMs ?? 0;
    const levelLosses = s.levelLosses;
    if (levelLosses)
      this.levels = (this.levels ?? levelLosses.map(() => 0)).map((v, l) => v + levelLosses[l]);
    const clampBinds = s.clampBinds;
    if (clampBinds)
      this.binds = (this.binds ?? clampBinds.map(() => 0)).map((v, l) => v + (clampBinds[l] ? 1 : 0));
    const logNow = s.step % this.logEvery === 0 || s.stepInEpoch === s.stepsPerEpoch;
    const seconds = (performance.now() - this.start) / 1000;
    const samplesPerSecond = this.samples / Math.max(seconds, 1e-9);
    const dataWaitShare = Math.min(1, this.dataMs / 1000 / Math.max(seconds, 1e-9));
    const meanLevels = this.levels?.map((v) => v / this.steps);
    this.progress.update(
      {
        epoch: s.epoch,
        epochs: this.epochs,
        step: s.step,
        stepsPerEpoch: s.stepsPerEpoch,
        stepInEpoch: s.stepInEpoch,
        loss: this.loss / this.steps,
        levelLosses: meanLevels,
        samplesPerSecond,
        dataWaitShare,
        etaSeconds: ((this.totalSteps - s.step) * seconds) / this.steps,
      },
      logNow,
    );
    if (!logNow) return;
    this.write({
      kind: 'step',
      epoch: s.epoch,
      step: s.step,
      loss: this.loss / this.steps,
      levelLosses: meanLevels,
      ...(this.binds ? { hiconeClampBinds: this.binds.map((v) => v / this.steps) } : {}),
      learningRate: s.learningRate,
      samplesPerSecond,
      dataWaitShare,
      seconds: this.elapsed,
    });
    this.loss = 0;
    this.levels = null;
    this.binds = null;
    this.steps = 0;
    this.samples = 0;
    this.dataMs = 0;
    this.start = performance.now();
  }
}
