/**
 * faceflow clusters list | show | name (issue 14 item 3), through the built CLI against the matcher's clusters
 * API served in-process (a MemoryGalleryStore and a clusterer fed synthetic embeddings): the one call and its
 * print, human and --json; and its edges: no --matcher or key is a usage error (exit 2), an unreachable
 * matcher, a refused key and an unknown cluster are one line each (exit 1), the key is never printed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnknownClusterer } from '@faceflow/engine/match';
import { MemoryGalleryStore } from '@faceflow/shared';
import { createLogger, createMetrics, sha256Hex, startOpsServer, type OpsServer } from '@faceflow/shared/ops';
import { clustersApi } from '@faceflow/matcher';
import { faceflow, json } from './helpers.js';

const KEY = 'cli-clusters-test-key-0123456789';
const DEADLINE_MS = 60_000;
let dir = '';
let keyFile = '';
let url = '';
let server: OpsServer;
const store = new MemoryGalleryStore();
const clusterer = new UnknownClusterer({ threshold: 0.5, idPrefix: 'u' });

beforeAll(async () => {
  const unit = (v: number[]): Float32Array => Float32Array.from(v.map((x) => x / Math.hypot(...v)));
  clusterer.add({ id: 't1', embedding: unit([1, 0.05, 0, 0]), at: Date.UTC(2026, 0, 1, 8), camera: 'door' });
  clusterer.add({ id: 't2', embedding: unit([1, -0.05, 0, 0]), at: Date.UTC(2026, 0, 2, 8), camera: 'yard' });
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-clusters-'));
  keyFile = path.join(dir, 'api-key');
  await writeFile(keyFile, `${KEY}\n`, { mode: 0o600 });
  server = await startOpsServer({ port: 0, host: '127.0.0.1', metrics: createMetrics(), logger: createLogger({ level: 'silent' }), handle: clustersApi({ clusterer, store, keyDigests: [sha256Hex(KEY)] }) });
  url = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const run = (args: string[], env: Record<string, string | undefined> = {}) => faceflow(['clusters', ...args], DEADLINE_MS, { FACEFLOW_MATCHER_URL: undefined, FACEFLOW_GALLERY_API_KEY_FILE: undefined, ...env });

describe('faceflow clusters', () => {
  it('clusters_are_listed_shown_and_named_into_the_gallery_from_the_command_line', async () => {
    const list = await run(['list', '--matcher', url, '--api-key-file', keyFile]);
    expect(list.code).toBe(0);
    expect(list.stdout).toBe('u1  2 member(s)  2026-01-01T08:00:00.000Z .. 2026-01-02T08:00:00.000Z  cameras door:1 yard:1\n');
    const shown = json(await run(['show', 'u1', '--json'], { FACEFLOW_MATCHER_URL: url, FACEFLOW_GALLERY_API_KEY_FILE: keyFile }));
    expect(shown).toEqual({ id: 'u1', members: 2, firstSeen: Date.UTC(2026, 0, 1, 8), lastSeen: Date.UTC(2026, 0, 2, 8), cameras: { door: 1, yard: 1 }, mergedFrom: [] });
    const named = await run(['name', 'u1', 'courier', '--matcher', url, '--api-key-file', keyFile]);
    expect([named.code, named.stderr]).toEqual([0, '']);
    expect(named.stdout).toMatch(/^enrolled cluster u1 as "courier" \(2 embeddings, gallery version \d+\)\n$/);
    expect((await store.get('courier'))!.embeddings.length).toBe(2);
    expect(json(await run(['list', '--json', '--matcher', url, '--api-key-file', keyFile]))).toEqual({ clustering: true, clusters: [] });
  });

  it('bad_input_is_one_line_exit_2_for_usage_1_otherwise_and_never_prints_the_key', async () => {
    const at = ['--matcher', url, '--api-key-file', keyFile];
    const wrongKey = path.join(dir, 'wrong-key');
    await writeFile(wrongKey, 'not-the-key\n');
    const cases: [string[], number, RegExp][] = [
      [['list', '--api-key-file', keyFile], 2, /give the matcher as --matcher URL/],
      [['list', '--matcher', url], 2, /give a gallery API key as --api-key-file FILE/],
      [['list', '--matcher', 'ftp://x', '--api-key-file', keyFile], 2, /--matcher must be an http/],
      [['show', ...at], 2, /wrong number of arguments/],
      [['forget', ...at], 2, /unknown subcommand "forget"/],
      [['list', '--matcher', 'http://127.0.0.1:9', '--api-key-file', keyFile], 1, /BACKEND_UNAVAILABLE: cannot reach the matcher at http:\/\/127\.0\.0\.1:9/],
      [['list', '--matcher', url, '--api-key-file', wrongKey], 1, /UNAUTHORIZED: the matcher refused the API key/],
      [['list', '--matcher', url, '--api-key-file', path.join(dir, 'missing')], 1, /INVALID_CONFIG: cannot read the API key file/],
      [['show', 'u42', ...at], 1, /NOT_FOUND: no cluster "u42"/],
      [['name', 'u42', 'x', ...at], 1, /NOT_FOUND: no cluster "u42"/],
    ];
    for (const [args, code, message] of cases) {
      const r = await run(args);
      expect([r.code, r.stderr.trim().split('\n').length], args.join(' ')).toEqual([code, 1]);
      expect(r.stderr).toMatch(message);
      expect(r.stdout + r.stderr).not.toContain(KEY);
    }
  });
});
