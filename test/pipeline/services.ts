/** Running the services as child processes in the pipeline tests, and reading topics with kcat. */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { config, kcatBroker, kcatSecurityArgs, until } from '../shared/infra.js';
import { ROOT } from './fixtures.js';

const exec = promisify(execFile);
const broker = kcatBroker();

export interface Service {
  name: string;
  child: ChildProcess;
  port?: number;
  logs: string[];
}
export function startService(services: Service[], prefix: string, name: string, env: Record<string, string>): Service {
  const child = spawn('node', [`services/${name}/dist/main.js`], {
    cwd: ROOT,
    env: {
      ...process.env,
      FACEFLOW_KAFKA_BROKERS: config.kafkaBrokers.join(','),
      FACEFLOW_REDIS_URL: config.redisUrl,
      FACEFLOW_TOPIC_PREFIX: prefix,
      FACEFLOW_TOPIC_PARTITIONS: '2',
      FACEFLOW_HTTP_PORT: '0',
      FACEFLOW_HTTP_HOST: '127.0.0.1',
      FACEFLOW_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s: Service = { name, child, logs: [] };
  const onLine = (d: Buffer): void => {
    for (const line of d.toString('utf8').split('\n').filter(Boolean)) {
      s.logs.push(line);
      if (s.logs.length > 500) s.logs.shift();
      try {
        const j = JSON.parse(line) as { msg?: string; port?: number };
        if (j.msg === `${name} ready`) s.port = j.port;
      } catch {
        // not JSON
      }
    }
  };
  child.stdout!.on('data', onLine);
  child.stderr!.on('data', onLine);
  services.push(s);
  return s;
}

export async function ready(s: Service, ms = 180_000): Promise<void> {
  await until(() => s.port !== undefined || s.child.exitCode !== null, ms, `${s.name} ready`);
  if (s.port === undefined) throw new Error(`${s.name} exited with ${s.child.exitCode}:\n${s.logs.slice(-20).join('\n')}`);
}

/** Everything on a topic, through kcat: [headers, value] per message. */
export async function kcat(topic: string): Promise<{ headers: Record<string, string>; value: string }[]> {
  const { stdout } = await exec('kcat', ['-b', broker, ...kcatSecurityArgs(), '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%h\\t%s\\n'], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [h, ...rest] = line.split('\t');
      const headers: Record<string, string> = {};
      for (const kv of (h ?? '').split(',')) {
        const i = kv.indexOf('=');
        if (i > 0) headers[kv.slice(0, i)] = kv.slice(i + 1);
      }
      return { headers, value: rest.join('\t') };
    });
}


/** How many messages a topic holds (kcat, offsets only: frames are binary). */
export async function kcatCount(topic: string): Promise<number> {
  const { stdout } = await exec('kcat', ['-b', broker, ...kcatSecurityArgs(), '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%p:%o\\n'], { timeout: 30_000 });
  return stdout.split('\n').filter(Boolean).length;
}
