#!/usr/bin/env node
/** The `faceflow` command. */
import { runCommand, type CommandSpec } from './cli.js';
import { detect, encode, enroll, verifyCmd, identifyCmd } from './commands/faces.js';
import { EVAL_SUMMARY, runEval } from './commands/eval.js';
import { MODELS_SUMMARY, runModels } from './commands/models.js';
import { segment, redact } from './commands/segment.js';
import { train } from './commands/train.js';
import { trainSeg } from './commands/train-seg.js';
import { runPipeline } from './commands/run.js';
import { GALLERY_SUMMARY, runGallery } from './commands/gallery.js';
import { CLUSTERS_SUMMARY, runClusters } from './commands/clusters.js';

const COMMANDS: Record<string, CommandSpec> = {
  detect,
  encode,
  enroll,
  verify: verifyCmd,
  identify: identifyCmd,
  segment,
  redact,
  train,
  run: runPipeline,
};

const GROUPS: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }> = {
  eval: { summary: EVAL_SUMMARY, run: runEval },
  models: { summary: MODELS_SUMMARY, run: runModels },
  gallery: { summary: GALLERY_SUMMARY, run: runGallery },
  clusters: { summary: CLUSTERS_SUMMARY, run: runClusters },
};

function usage(): string {
  const rows = [
    ...Object.values(COMMANDS).map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    ...Object.entries(GROUPS).map(([n, g]) => `  ${n.padEnd(10)} ${g.summary}`),
  ];
  return ['faceflow: face recognition for camera streams', '', 'usage: faceflow <command> [options]   (faceflow <command> --help for its options)', '', ...rows].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  // `train seg` (the skin classifier of segmentation) sits beside `train` (a projection head), which takes no positionals
  if (name === 'train' && rest[0] === 'seg') return runCommand(trainSeg, rest.slice(1));
  const spec = COMMANDS[name];
  if (spec) return runCommand(spec, rest);
  const group = GROUPS[name];
  if (group) return group.run(rest);
  process.stderr.write(`faceflow: unknown command "${name}" (faceflow --help lists them)\n`);
  return 2;
}

/**
 * Every command closes what it opened, so the process ends by itself; should something still hold it open
 * (a bug), it exits with its code anyway after a moment, saying so, rather than hang (issue 12).
 */
function exitSoon(code: number): void {
  process.exitCode = code;
  setTimeout(() => {
    process.stderr.write('faceflow: warning: something was left open at the end of the command; exiting anyway (please report this)\n');
    process.exit(code);
  }, 5000).unref();
}

main(process.argv.slice(2)).then(exitSoon, (e: unknown) => {
  process.stderr.write(`faceflow: INTERNAL: ${(e as Error)?.message ?? String(e)}\n`);
  exitSoon(1);
});
