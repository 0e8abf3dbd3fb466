// Two-thread CPU check: does this machine run two threads in parallel right now? (used to qualify benchmark runs)
// usage: node scripts/cpu-parallelism.mjs 1 ; node scripts/cpu-parallelism.mjs 2  (same time = 2 free cores)
import { Worker, isMainThread } from 'node:worker_threads';
const spin = () => { let x = 0; for (let i = 0; i < 6e8; i++) x += i % 7; return x; };
if (!isMainThread) { spin(); process.exit(0); }
const n = Number(process.argv[2]);
const t = Date.now();
await Promise.all(Array.from({ length: n }, () => new Promise((r) => new Worker(new URL(import.meta.url)).on('exit', r))));
console.log(n, 'workers', Date.now() - t, 'ms');
