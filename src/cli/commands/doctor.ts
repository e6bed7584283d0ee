import { defineCommand } from '../args.js';

/** `contrastive doctor`: which backends work here and which one a run would use. */
export const doctorCommand = defineCommand({
  name: 'doctor',
  summary: 'Explain the compute engine: which tfjs backends load on this machine and which one runs use.',
  options: [],
  async run() {
    const { describeEngine } = await import('../../engine/describe.js');
    const report = await describeEngine();
    for (const line of report.lines) console.log(line);
  },
});
