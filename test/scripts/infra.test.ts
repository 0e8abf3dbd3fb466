/**
 * scripts/infra.sh and a Kafka/Redis it did not start (a loose end of issue 15: `up` silently took another
 * checkout's running infra as its own, and in the secured mode the suite then failed on certificates and
 * passwords it did not have). Run against the suite's own running infra, from a state directory that did not
 * start it: the line names the foreign service and the fix; secured, `up` refuses it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../pipeline/fixtures.js';
import { IN_CI } from '../shared/infra.js';

const run = promisify(execFile);
const SCRIPT = path.join(ROOT, 'scripts/infra.sh');
const secure = ['1', 'true', 'yes', 'on'].includes(process.env.FACEFLOW_INFRA_SECURE ?? '0');
const dir = mkdtempSync(path.join(tmpdir(), 'faceflow-infra-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function sh(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('bash', [SCRIPT, ...args], { env, timeout: 120_000, killSignal: 'SIGKILL' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; killed?: boolean; stdout?: string; stderr?: string };
    if (err.killed) throw new Error(`infra.sh ${args.join(' ')} did not exit in time`);
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

// the suite's infra, at the ports infra.sh uses for it (its defaults, or FACEFLOW_KAFKA_PORT/... as given to
// the suite), seen from a state directory that did not start it
const env = { ...process.env, FACEFLOW_INFRA_DIR: dir };
const up = await sh(['status'], env);
if (up.code !== 0 && IN_CI) throw new Error(`the suite's Kafka and Redis do not answer: ${up.stdout.trim()}`);

describe.skipIf(up.code !== 0)('infra.sh up over a Kafka and Redis another state directory started', () => {
  it(secure ? 'secured_up_refuses_infra_it_did_not_start' : 'plaintext_up_uses_infra_it_did_not_start_and_says_so', async () => {
    const r = await sh(['up'], env);
    expect(r.stderr).toMatch(new RegExp(`(redis|kafka) on port \\d+ was not started from ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect(r.stderr).toMatch(/infra\.sh down/);
    if (secure) {
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
    } else {
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^export FACEFLOW_KAFKA_BROKERS=/m);
    }
  }, 150_000);
});
