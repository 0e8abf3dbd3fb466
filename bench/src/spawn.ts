/**
 * The one service spawner (issue 13): the four services as child processes over the real Kafka and Redis,
 * for the benchmarks that run the pipeline (pipeline.ts, compare-run-kafka.ts) and for the pipeline
 * integration tests (test/pipeline/services.ts imports it as `@faceflow/bench/spawn`). Start one (its
 * "<name> ready" log line gives its HTTP port), wait for it, read its /metrics, stop them all (SIGTERM, then
 * SIGKILL after 15 s). It knows the repository's layout (services/<name>/dist/main.js), so it lives here
 * with the other repository-level tools, not in a library package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type ServiceName = 'ingest' | 'embedder' | 'matcher' | 'alerts';

export interface Service {
  name: ServiceName;
  child: ChildProcess;
  port?: number;
  /** the last 500 output lines (error messages; the tests look for a log line in them) */
  logs: string[];
  /** the JSON log lines, parsed (the last 5000) */
  lines: Array<Record<string, unknown>>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Node options for one service's process, from FACEFLOW_BENCH_NODE_ARGS_<NAME> (space-separated), for
 * profiling a benchmark run, e.g. FACEFLOW_BENCH_NODE_ARGS_EMBEDDER="--cpu-prof --cpu-prof-dir=/tmp/prof"
 * (Node refuses --cpu-prof in NODE_OPTIONS, and it would reach every process).
 */
function nodeArgsFor(name: ServiceName): string[] {
  return (process.env[`FACEFLOW_BENCH_NODE_ARGS_${name.toUpperCase()}`] ?? '').split(' ').filter(Boolean);
}

/** Starts services/<name>/dist/main.js with `env` over this process's environment (HTTP on a free port). */
export function startService(name: ServiceName, env: Record<string, string>, logLevel: 'info' | 'warn' = 'info'): Service {
  const child = spawn(process.execPath, [...nodeArgsFor(name), path.join(ROOT, `services/${name}/dist/main.js`)], {
    cwd: ROOT,
    env: { ...process.env, FACEFLOW_HTTP_PORT: '0', FACEFLOW_HTTP_HOST: '127.0.0.1', FACEFLOW_LOG_LEVEL: logLevel, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s: Service = { name, child, logs: [], lines: [] };
  const onData = (d: Buffer): void => {
    for (const line of d.toString('utf8').split('\n').filter(Boolean)) {
      s.logs.push(line);
      if (s.logs.length > 500) s.logs.shift();
      try {
        const j = JSON.parse(line) as Record<string, unknown>;
        s.lines.push(j);
        if (s.lines.length > 5000) s.lines.shift();
        if (j.msg === `${name} ready`) s.port = j.port as number;
      } catch {
        // not JSON
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return s;
}

/** Waits for the service's ready line; fails with its last output if it exits or takes longer than `ms`. */
export async function ready(s: Service, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (s.port === undefined) {
    if (s.child.exitCode !== null) throw new Error(`${s.name} exited with ${s.child.exitCode}:\n${s.logs.slice(-20).join('\n')}`);
    if (Date.now() > end) throw new Error(`${s.name} not ready after ${ms} ms:\n${s.logs.slice(-20).join('\n')}`);
    await sleep(50);
  }
}

export async function stopServices(services: Service[]): Promise<void> {
  await Promise.all(
    services.map(async (s) => {
      if (s.child.exitCode !== null || s.child.signalCode !== null) return;
      const gone = new Promise((r) => s.child.once('exit', r));
      s.child.kill('SIGTERM');
      const t = setTimeout(() => s.child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(t);
    }),
  );
}

export async function metricsText(s: Service): Promise<string> {
  return (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
}

/** Sum of a metric's samples whose labels contain every `where` pair. */
export function sumMetric(text: string, name: string, where: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(where).every(([k, v]) => labels[k] === v)) total += Number(m[4]);
  }
  return total;
}

/** A service's memory now and at its peak (VmRSS, VmHWM of /proc/<pid>/status; Linux), bytes. */
export async function serviceMemory(s: Service): Promise<{ rssBytes: number; peakRssBytes: number }> {
  const text = await readFile(`/proc/${s.child.pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}
