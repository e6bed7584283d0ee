/**
 * Named points in the trainer and the run folder where a crash would hurt most (after a step,
 * between writing a file and renaming it into place, between the two files of a saved model).
 * They do nothing unless a hook is installed: the fault-injection tests install one (through the
 * CLI's `CONTRASTIVE_FAULT` variable) that kills the process at the n-th visit of a point.
 */
let hook: ((point: string) => void) | undefined;

/** Installs (or, with `undefined`, removes) the hook called at every fault point. */
export function setFaultHook(next: ((point: string) => void) | undefined): void {
  hook = next;
}

/** Marks a fault point. */
export function faultPoint(point: string): void {
  hook?.(point);
}
