/**
 * The README's first run (issue 12): `npm run -s demo -- <video> <refs>` and `npm test` on a fresh clone,
 * without ffmpeg, Kafka or Redis installed. scripts/setup.sh installs what is missing or says in one line what
 * to install; nothing of setup's reaches the demo's stdout, which carries identity events only; and the
 * `faceflow` bin that npm links at `npm ci` time exists before the build.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { IdentityEventSchema } from '@faceflow/shared';
import { ROOT, SAMPLE } from '../pipeline/fixtures.js';

const run = promisify(execFile);
const temps: string[] = [];
function temp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'faceflow-setup-'));
  temps.push(d);
  return d;
}
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** Runs a command with a deadline; a hang fails the test instead of stalling it. */
async function runWithDeadline(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }) {
  try {
    const r = await run(cmd, args, { cwd: opts.cwd ?? ROOT, env: opts.env ?? process.env, timeout: opts.timeoutMs, killSignal: 'SIGKILL' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number | string; killed?: boolean; stdout?: string; stderr?: string };
    if (err.killed) throw new Error(`${cmd} ${args.join(' ')} did not exit within ${opts.timeoutMs} ms`);
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** A copy of the setup scripts in a folder of its own, so a test can make its node_modules look missing. */
function setupCopy(): string {
  const root = temp();
  mkdirSync(path.join(root, 'scripts/lib'), { recursive: true });
  copyFileSync(path.join(ROOT, 'scripts/setup.sh'), path.join(root, 'scripts/setup.sh'));
  copyFileSync(path.join(ROOT, 'scripts/lib/apt.sh'), path.join(root, 'scripts/lib/apt.sh'));
  writeFileSync(path.join(root, 'package-lock.json'), '{}\n');
  return root;
}

/** A bin folder holding only the named commands (symlinks to the real ones): a PATH without ffmpeg. */
function pathWith(commands: string[]): string {
  const bin = temp();
  for (const c of commands) {
    const real = execFileSync('bash', ['-c', `command -v ${c}`], { encoding: 'utf8' }).trim();
    symlinkSync(realpathSync(real), path.join(bin, c));
  }
  return bin;
}

describe('first run (scripts/setup.sh, the faceflow bin)', () => {
  it('the_faceflow_bin_is_linked_before_the_build', async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'packages/cli/package.json'), 'utf8')) as { bin: Record<string, string> };
    const target = path.join('packages/cli', pkg.bin.faceflow!);
    // npm links a workspace bin only when its file exists at `npm ci` time: on a fresh clone that is a tracked file
    const tracked = execFileSync('git', ['ls-files', '--error-unmatch', target], { cwd: ROOT, encoding: 'utf8' }).trim();
    expect(tracked).toBe(target);
    expect(realpathSync(path.join(ROOT, 'node_modules/.bin/faceflow'))).toBe(realpathSync(path.join(ROOT, target)));
    const r = await runWithDeadline(path.join(ROOT, 'node_modules/.bin/faceflow'), ['--help'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('usage: faceflow <command>');
  });

  it('setup_keeps_npm_output_off_stdout', async () => {
    const root = setupCopy();
    // an npm that prints what npm ci prints, on stdout, and records that it was called
    const fakeNpm = path.join(root, 'fake-npm');
    writeFileSync(fakeNpm, `#!/usr/bin/env bash\necho "$*" >> "${root}/npm-calls"\necho "added 405 packages in 9s"\n`, { mode: 0o755 });
    const r = await runWithDeadline('bash', [path.join(root, 'scripts/setup.sh')], {
      cwd: root,
      env: { ...process.env, FACEFLOW_NPM: fakeNpm, FACEFLOW_APT: '0' },
      timeoutMs: 30_000,
    });
    expect(r.stderr).not.toMatch(/^setup: /m);
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(root, 'npm-calls'), 'utf8')).toMatch(/^ci /m); // node_modules missing: npm ci ran
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('added 405 packages');
  });

  it('setup_says_in_one_line_what_to_install_when_ffmpeg_is_missing', async () => {
    const root = setupCopy();
    mkdirSync(path.join(root, 'node_modules'));
    writeFileSync(path.join(root, 'node_modules/.package-lock.json'), '{}\n'); // installed, and newer than the lock
    const bin = pathWith(['node', 'dirname']);
    const r = await runWithDeadline('/bin/bash', [path.join(root, 'scripts/setup.sh')], {
      cwd: root,
      env: { PATH: bin, HOME: process.env.HOME ?? '/tmp', FACEFLOW_APT: '0' },
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^setup: ffmpeg is not installed .*apt-get install ffmpeg/);
  });

  it('the_demo_prints_only_identity_events_on_stdout', async () => {
    const dir = temp();
    const refs = path.join(dir, 'refs');
    mkdirSync(refs);
    await run('ffmpeg', ['-y', '-loglevel', 'error', '-i', SAMPLE, '-vf', 'crop=400:420:270:280', path.join(refs, '0001_alice.png')]);
    const clip = path.join(dir, 'clip.mp4');
    await run('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-i', SAMPLE, '-t', '2', '-r', '10', '-vf', 'scale=960:-2', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', clip]);
    const r = await runWithDeadline('npm', ['run', '-s', 'demo', '--', clip, refs, '--workers', '1', '--fps', '4'], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    const events = lines.map((l) => IdentityEventSchema.validate(JSON.parse(l) as unknown) as { type: string; identity: string | null });
    expect(events.some((e) => e.type === 'enter' && e.identity === 'alice')).toBe(true);
  });
});
