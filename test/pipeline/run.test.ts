/**
 * `faceflow run` end to end, in one process: a short clip of three people, one of them enrolled, in; identity
 * events out as JSON lines. The enrolled one is named, the others are unknown, nobody is misnamed.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { IdentityEventSchema } from '@faceflow/shared';
import { CLI, fixture, ROOT } from './fixtures.js';

const run = promisify(execFile);

describe('faceflow run (one process)', () => {
  it('names the enrolled person on a clip, calls the others unknown, and ends every track', async () => {
    const f = await fixture();
    const { stdout, stderr } = await run('node', [CLI, 'run', '--source', f.clip, '--gallery', f.gallery, '--json', '--fps', '4', '--workers', '1', '--camera', 'lobby'], {
      cwd: ROOT,
      timeout: 240_000,
    });
    const events = stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    // every line is a valid identity event
    for (const e of events) IdentityEventSchema.validate(e);
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
  }, 300_000);
});
