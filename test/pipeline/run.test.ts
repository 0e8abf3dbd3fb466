/**
 * `faceflow run` end to end, in one process: a short clip of three people, one of them enrolled, in; identity
 * events out as JSON lines. The enrolled one is named, the others are unknown, nobody is misnamed; only the
 * enrolled one's events point at a crop, unless --no-redact exempts the camera. Strangers who come back are
 * grouped as the matcher service groups them (issue 14).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { IdentityEventSchema } from '@faceflow/shared';
import { CLI, fixture, ROOT, SAMPLE } from './fixtures.js';

const run = promisify(execFile);

/** The identity events `faceflow run` prints with --json, checked against the schema. */
async function runEvents(args: string[]): Promise<{ events: Record<string, unknown>[]; stderr: string }> {
  const { stdout, stderr } = await run('node', [CLI, 'run', ...args, '--json', '--fps', '4', '--workers', '1', '--camera', 'lobby'], { cwd: ROOT, timeout: 240_000 });
  const events = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const e of events) IdentityEventSchema.validate(e);
  return { events, stderr };
}

/** Every crop file under a --crops folder (one folder per camera). */
/** The face crops under `dir` (one folder per camera); the erasure index (.erasure: which crops show whom) is not a crop. */
function cropFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() && d.name !== '.erasure' ? readdirSync(path.join(dir, d.name)).map((f) => path.join(dir, d.name, f)) : []));
}

describe('faceflow run (one process)', () => {
  it('names the enrolled person on a clip, calls the others unknown, and ends every track', async () => {
    const f = await fixture();
    const { events, stderr } = await runEvents(['--source', f.clip, '--gallery', f.gallery, '--crops', path.join(f.dir, 'crops-default')]);
    const enters = events.filter((e) => e.type === 'enter');
    expect(enters.filter((e) => e.identity === 'alice')).toHaveLength(1);
    expect(enters.filter((e) => e.identity === null).length).toBe(2);
    expect(events.every((e) => e.identity === 'alice' || e.identity === null)).toBe(true);
    expect(events.every((e) => e.cameraId === 'lobby')).toBe(true);
    const exits = events.filter((e) => e.type === 'exit');
    expect(new Set(exits.map((e) => e.trackId))).toEqual(new Set(enters.map((e) => e.trackId)));
    const alice = enters.find((e) => e.identity === 'alice')!;
    expect(alice.startOffsetMs).toBe(0);
    expect(stderr).toMatch(/"frames":10/);
    // privacy by default: the enrolled person's events point at her crop, the strangers' at nothing
    expect(alice.thumbnailRef).toMatch(/^file:/);
    expect(fileURLToPath(String(alice.thumbnailRef))).toSatisfy(existsSync);
    expect(enters.filter((e) => e.identity === null).map((e) => e.thumbnailRef)).toEqual([null, null]);
    // and the crop folder keeps only what events point at: the strangers' crops, and every crop no event
    // showed, were deleted
    const shown = new Set(events.map((e) => e.thumbnailRef).filter((r): r is string => typeof r === 'string').map((r) => fileURLToPath(r)));
    expect(shown.size).toBeGreaterThan(0);
    expect(new Set(cropFiles(path.join(f.dir, 'crops-default')))).toEqual(shown);
  }, 300_000);

  it('--no-redact exempts the camera: the unknown tracks keep their thumbnails', async () => {
    const f = await fixture();
    const { events } = await runEvents(['--source', f.clip, '--gallery', f.gallery, '--crops', path.join(f.dir, 'crops-exempt'), '--no-redact']);
    const unknown = events.filter((e) => e.type === 'enter' && e.identity === null);
    expect(unknown.map((e) => e.thumbnailRef)).toEqual([expect.stringMatching(/^file:/), expect.stringMatching(/^file:/)]);
    for (const e of unknown) expect(fileURLToPath(String(e.thumbnailRef))).toSatisfy(existsSync);
    expect(events.filter((e) => e.identity !== null).every((e) => e.identity === 'alice')).toBe(true);
    // an exempt camera keeps every crop (one per embedded face: more than the events show)
    const shown = new Set(events.map((e) => e.thumbnailRef).filter((r) => typeof r === 'string'));
    expect(cropFiles(path.join(f.dir, 'crops-exempt')).length).toBeGreaterThan(shown.size);
  }, 300_000);
  it('recurring_strangers_get_the_same_cluster_on_their_second_visit_and_the_enrolled_never_does', async () => {
    const f = await fixture();
    // the three of them, 1.5 s; nobody for 3 s (longer than the track timeout: every track ends); back for 4 s
    const clip = path.join(f.dir, 'comeback.mp4');
    await run('ffmpeg', ['-y', '-loglevel', 'error', '-loop', '1', '-t', '1.5', '-i', SAMPLE, '-f', 'lavfi', '-t', '3', '-i', 'color=black:s=960x640', '-loop', '1', '-t', '4', '-i', SAMPLE,
      '-filter_complex', '[0:v]scale=960:640,setsar=1[a];[1:v]setsar=1[b];[2:v]scale=960:640,setsar=1[c];[a][b][c]concat=n=3:v=1:a=0,fps=10,format=yuv420p', clip]);
    const { events, stderr } = await runEvents(['--source', clip, '--gallery', f.gallery, '--cooldown', '0']);
    const enters = events.filter((e) => e.type === 'enter');
    const first = enters.filter((e) => (e.startOffsetMs as number) < 1500);
    const again = enters.filter((e) => (e.startOffsetMs as number) >= 4500);
    expect(first.filter((e) => e.identity === null)).toHaveLength(2);
    expect(again.filter((e) => e.identity === null)).toHaveLength(2);
    // a first visit has no cluster yet; on the second each stranger carries the cluster of their first track
    expect(first.every((e) => e.unknownCluster === undefined)).toBe(true);
    const ids = again.filter((e) => e.identity === null).map((e) => (e.unknownCluster as { id: string; members: number }).id);
    expect(new Set(ids).size).toBe(2);
    expect(again.filter((e) => e.identity === 'alice').every((e) => e.unknownCluster === undefined)).toBe(true);
    // the summary lists the run's clusters (ids, counts and times, no embedding)
    const summary = JSON.parse(/faceflow run: (\{.*\})/.exec(stderr)![1]!) as { unknownClusters: Array<Record<string, unknown>> };
    expect(summary.unknownClusters.map((c) => c.id).sort()).toEqual([...ids].sort());
    for (const c of summary.unknownClusters) expect(Object.keys(c).sort()).toEqual(['cameras', 'firstSeenOffsetMs', 'id', 'lastSeenOffsetMs', 'members']);
    // off: no cluster anywhere
    const off = await runEvents(['--source', clip, '--gallery', f.gallery, '--cooldown', '0', '--unknown-cluster-retention', '0']);
    expect(off.events.every((e) => e.unknownCluster === undefined)).toBe(true);
  }, 400_000);
});
