#!/usr/bin/env node
// The `faceflow` bin that npm links. npm links a workspace's bin only when its file exists at `npm ci` time,
// and dist/ does not exist until the build (issue 12: `npx faceflow` failed on a fresh clone), so the bin is
// this committed file, which runs the built CLI or says in one line how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('faceflow: the CLI is not built yet: run `npm run build` (or `bash scripts/setup.sh`) in the repository root\n');
  process.exit(1);
}
await import(main.href);
