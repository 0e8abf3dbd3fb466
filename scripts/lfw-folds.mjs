#!/usr/bin/env node
// Rewrites an LFW View 1 pairs file (header "N": N matched then N mismatched pairs) into the View 2 layout
// (header "10 n": 10 folds of n matched followed by n mismatched), so that the 10-fold protocol of
// `faceflow eval lfw` can be exercised on View 1 data. It is NOT View 2: people repeat across these folds.
// usage: node scripts/lfw-folds.mjs ../shared/data/lfw/pairsDevTest.txt /tmp/devtest-10fold.txt
import { readFileSync, writeFileSync } from 'node:fs';

const [, , input, output] = process.argv;
if (!input || !output) {
  console.error('usage: lfw-folds.mjs <pairsDev*.txt> <out.txt>');
  process.exit(2);
}
const lines = readFileSync(input, 'utf8').split(/\r?\n/).filter((l) => l.trim());
const n = Number(lines[0]);
if (!Number.isInteger(n) || lines.length !== 1 + 2 * n || n % 10 !== 0) {
  console.error(`${input}: expected a View 1 file with N matched + N mismatched pairs, N divisible by 10`);
  process.exit(1);
}
const same = lines.slice(1, 1 + n);
const diff = lines.slice(1 + n);
const per = n / 10;
const out = [`10 ${per}`];
for (let f = 0; f < 10; f++) out.push(...same.slice(f * per, (f + 1) * per), ...diff.slice(f * per, (f + 1) * per));
writeFileSync(output, `${out.join('\n')}\n`);
