/**
 * `faceflow run`'s two-phase shutdown from outside (issue 13 step 4: the pipeline's states replace run.ts's
 * own loop and signal handling): SIGINT stops intake, the frames taken are drained, every open track gets its
 * exit event, the run ends with its summary and exit code 0.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, SAMPLE } from './fixtures.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('faceflow run on SIGINT', () => {
  it('stops_intake_drains_what_was_taken_ends_every_track_and_exits_0', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-run-signal-'));
    dirs.push(dir);
    // far more frames than the test lets through: the same photo again and again (one track per face)
    const images = path.join(dir, 'images');
    await mkdir(images);
    for (let i = 0; i < 400; i++) await symlink(SAMPLE, path.join(images, `f${String(i).padStart(4, '0')}.jpg`));
    const gallery = path.join(dir, 'gallery.json');
    await writeFile(gallery, JSON.stringify({ format: 'faceflow-gallery', version: 1, model: 'faceapi-recognition', dim: 128, galleryVersion: 0, updatedAt: 0, identities: [] }));

    const child = spawn(process.execPath, [CLI, 'run', '--source', images, '--gallery', gallery, '--workers', '1', '--json', '--progress', '--min-faces', '2'], {
      cwd: ROOT,
      env: { ...process.env, FACEFLOW_BACKEND: 'wasm' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    let signalled = false;
    child.stderr.on('data', (d) => {
      stderr += d;
      // once a few frames went through the engine (the progress bar on stderr), stop it
      const done = [...stderr.matchAll(/run: frames \[[#.\s]*\] (\d+)\/400/g)].map((m) => Number(m[1]));
      if (!signalled && done.some((n) => n >= 3)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`faceflow run did not end\n${stderr}`));
      }, 300_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(signalled, stderr).toBe(true);
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/faceflow run: stopping intake, draining \(Ctrl-C again to force\)/);
    const summary = JSON.parse(/faceflow run: (\{.*\})/.exec(stderr)![1]!) as { frames: number; events: { enter: number; exit: number } };
    expect(summary.frames).toBeGreaterThan(0);
    expect(summary.frames).toBeLessThan(400);
    const events = stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; trackId: string });
    // every enter has its exit: the open tracks were ended, not dropped
    expect(summary.events.enter).toBeGreaterThan(0);
    const entered = events.filter((e) => e.type === 'enter').map((e) => e.trackId).sort();
    expect(events.filter((e) => e.type === 'exit').map((e) => e.trackId).sort()).toEqual(entered);
  });
});
