/** A value per optimiser step. */
export type Schedule = (step: number) => number;

/** Linear warm-up from 0 to `peak` over `warmupSteps`, then cosine decay to `final` at `totalSteps`. */
export function cosineWithWarmup(peak: number, totalSteps: number, warmupSteps = 0, final = 0): Schedule {
  return (step) => {
    if (step < warmupSteps) return (peak * (step + 1)) / warmupSteps;
    const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return final + 0.5 * (peak - final) * (1 + Math.cos(Math.PI * progress));
  };
}

/** Linear warm-up, then constant. */
export function constantWithWarmup(peak: number, warmupSteps = 0): Schedule {
  return (step) => (step < warmupSteps ? (peak * (step + 1)) / warmupSteps : peak);
}

/** SANE's α_t / β_t: a linear ramp from 0 to `final` over `rampSteps` steps (warm-up from 0). */
export function linearRamp(final: number, rampSteps: number): Schedule {
  return (step) => (rampSteps <= 0 ? final : final * Math.min(1, step / rampSteps));
}
