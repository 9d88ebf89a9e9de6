#!/usr/bin/env node
// Entry point of the `trainjob-progress` command: dispatches to one subcommand per component.
// Each subcommand module exports `run(argv): Promise<number>` and is loaded only when used,
// so the sidecar does not load the webhook's or aggregator's dependencies.

const SUBCOMMANDS: Record<string, { summary: string; load: () => Promise<Subcommand> }> = {
  webhook: {
    summary: 'serve the mutating admission webhook that injects the sidecar',
    load: () => import('../webhook/main.ts'),
  },
  sidecar: {
    summary: 'scrape the trainer metrics endpoint and stream samples to the aggregator',
    load: () => import('../sidecar/main.ts'),
  },
  aggregator: {
    summary: 'receive sidecar streams, write the trainerStatus annotation, serve live progress',
    load: () => import('../aggregator/main.ts'),
  },
  tail: {
    summary: 'show live progress of a TrainJob until it ends',
    load: () => import('./tail-command.ts'),
  },
  status: {
    summary: 'print the trainerStatus annotation of a TrainJob in readable form',
    load: () => import('./status-command.ts'),
  },
  demo: {
    summary: 'run a real training job end to end on a local control plane',
    load: () => import('../demo/main.ts'),
  },
};

interface Subcommand {
  run(argv: string[]): Promise<number>;
}

function usage(): string {
  const lines = Object.entries(SUBCOMMANDS).map(
    ([name, { summary }]) => `  ${name.padEnd(11)} ${summary}`,
  );
  return [
    'Usage: trainjob-progress <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `trainjob-progress <command> --help` for the options of a command.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const subcommand = SUBCOMMANDS[name];
  if (subcommand === undefined) {
    console.error(`trainjob-progress: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  const module = await subcommand.load();
  return module.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`trainjob-progress: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
