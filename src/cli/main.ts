import { ContrastiveError } from '../errors.js';
import { describeFsError } from '../io/fsErrors.js';
import { type CommandSpec, commandHelp, parseArgs } from './args.js';
import { buildNativeCommand } from './commands/buildNative.js';
import { compareCommand } from './commands/compare.js';
import { dedupeCommand } from './commands/dedupe.js';
import { doctorCommand } from './commands/doctor.js';
import { embedCommand } from './commands/embed.js';
import { evalCommand } from './commands/evaluate.js';
import { exportWebCommand } from './commands/exportWeb.js';
import { indexCommand } from './commands/index.js';
import { predictCommand } from './commands/predict.js';
import { reportCommand } from './commands/report.js';
import { searchCommand } from './commands/search.js';
import { serveCommand } from './commands/serve.js';
import { storeCommand } from './commands/store.js';
import { studyCommand } from './commands/study.js';
import { trainCommand } from './commands/train.js';
import { workerCommand } from './commands/worker.js';

const COMMANDS: readonly CommandSpec[] = [
  trainCommand,
  evalCommand,
  embedCommand,
  indexCommand,
  searchCommand,
  storeCommand,
  workerCommand,
  predictCommand,
  dedupeCommand,
  serveCommand,
  exportWebCommand,
  compareCommand,
  reportCommand,
  studyCommand,
  doctorCommand,
  buildNativeCommand,
];

function mainHelp(): string {
  return [
    'Usage: contrastive <command> [options]',
    '',
    'Contrastive representation learning that uses all the labels: SimCLR, SupCon, HiMulCon/HiConE/HiMulConE, MoCo, SANE.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    '',
    "Run `contrastive <command> --help` for a command's options.",
  ].join('\n');
}

/** Runs the CLI with `argv` (without `node` and the script). Resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(mainHelp());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFile } = await import('node:fs/promises');
    const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    console.log(pkg.version);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`contrastive: unknown command ${JSON.stringify(name)}.\n\n${mainHelp()}`);
    return 1;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(commandHelp(command));
    return 0;
  }
  try {
    return (await command.run(parseArgs(command, rest))) ?? 0;
  } catch (error) {
    console.error(errorText(error));
    return 1;
  }
}

/**
 * What the user sees for an error: expected errors as their message alone; file-system and
 * memory errors as one line naming the path or the limit; anything else is a bug and shows its
 * stack.
 */
export function errorText(error: unknown): string {
  if (error instanceof ContrastiveError) return `error: ${error.message}`;
  const e = error as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.path === 'string') {
    return `error: ${e.syscall ?? 'access'} ${e.path}: ${describeFsError(e)}`;
  }
  if (
    error instanceof RangeError &&
    /allocation failed|Invalid array length|Invalid typed array length/i.test(error.message)
  ) {
    return `error: out of memory (${error.message}); use smaller sizes (--batch-size, --embedding-dim, --queue-size, --train-limit).`;
  }
  return `error: this is a bug, please report it (https://github.com/ with the command and this trace):\n${e?.stack ?? String(error)}`;
}
