/**
 * `faceflow gallery import | export | list | delete` as a child process (issue 12), against a gallery file
 * and against the real Redis at FACEFLOW_REDIS_URL (its own random key prefix, deleted afterwards; skipped
 * with a message when Redis is unreachable outside CI). Every run has a deadline (the helper's timeout).
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEventSchema, DirCropStore, GalleryKey, l2normalize } from '@faceflow/shared';
import { RedisGalleryStore } from '@faceflow/shared/redis';
import { config, redis, probeRedis, REDIS_PLAINTEXT_ENV, skipUnlessReachable, uniq } from '../../../test/shared/infra.js';
import { faceflow, json, type CliResult } from './helpers.js';

const DEADLINE_MS = 30_000;
const redisSkip = skipUnlessReachable(await probeRedis());
const prefixes: string[] = [];
/** the key file each sealed Redis prefix ends under (issue 15), to open it for the cleanup */
const sealedPrefixes = new Map<string, string>();
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-gallery-cli-'));
});
afterAll(async () => {
  for (const keyPrefix of prefixes) {
    const keyFile = sealedPrefixes.get(keyPrefix);
    const s = await RedisGalleryStore.open({ ...redis, keyPrefix, ...(keyFile ? { key: GalleryKey.fromFile(keyFile) } : {}) });
    await s.drop();
    await s.close();
  }
  await rm(dir, { recursive: true, force: true }); // after the key files were read
});

const vec = (seed: number): number[] => l2normalize(Array.from({ length: 8 }, (_, i) => Math.sin(seed * 7 + i) + 0.01));
const galleryDoc = (model: string, galleryVersion: number, ids: [string, number][]): string =>
  JSON.stringify({
    format: 'faceflow-gallery',
    version: 1,
    model,
    dim: 8,
    galleryVersion,
    updatedAt: 1,
    identities: ids.map(([id, seed]) => ({ id, embeddings: [vec(seed)], metadata: { team: 'a' }, updatedAt: 1 })),
  });
const file = async (name: string, content: string): Promise<string> => {
  const p = path.join(dir, name);
  await writeFile(p, content);
  return p;
};
const oneLine = (r: CliResult): string[] => r.stderr.trim().split('\n');

type Target = () => string[];
const targets: [string, Target, boolean][] = [
  ['a gallery file', () => ['--gallery', path.join(dir, `g-${uniq()}.json`)], false],
  [
    'Redis',
    () => {
      const p = `test:gallery-cli:${uniq()}:`;
      prefixes.push(p);
      return ['--redis', config.redisUrl, '--gallery-prefix', p];
    },
    redisSkip,
  ],
];

describe.each(targets)('faceflow gallery against %s', (_name, target, skip) => {
  it.skipIf(skip)('import -> list -> delete -> export round-trips the versioned gallery file; an unknown name changes nothing', async () => {
    const at = target();
    const run = (args: string[]): Promise<CliResult> => faceflow(['gallery', ...args, ...at], DEADLINE_MS);
    const list = async (): Promise<any> => json(await run(['list', '--json']));
    const src = await file(`in-${uniq()}.json`, galleryDoc('m1', 5, [['alice', 1], ['bob', 2]]));

    const imported = await run(['import', src, '--json']);
    expect(imported.code).toBe(0);
    expect(json(imported)).toMatchObject({ version: 6, identities: 2, model: 'm1', dim: 8, fileVersion: 5 });
    expect(await list()).toEqual({
      version: 6,
      model: 'm1',
      dim: 8,
      identities: [
        { id: 'alice', embeddings: 1, metadata: { team: 'a' }, updatedAt: 1 },
        { id: 'bob', embeddings: 1, metadata: { team: 'a' }, updatedAt: 1 },
      ],
    });
    const human = await run(['list']);
    expect(human.stdout).toMatch(/version 6, 2 identities, model m1, dim 8\nalice +1 embeddings/);

    const unknown = await run(['delete', 'carol']);
    expect(unknown.code).toBe(1);
    expect(oneLine(unknown)).toEqual([expect.stringMatching(/NOT_FOUND: no identity "carol"/)]);
    expect((await list()).version).toBe(6);

    expect((await run(['delete', 'bob'])).code).toBe(0);
    expect(await list()).toMatchObject({ version: 7, identities: [{ id: 'alice' }] });

    const out = path.join(dir, `out-${uniq()}.json`);
    const exported = await run(['export', out]);
    expect(exported.code).toBe(0);
    const doc = JSON.parse(await readFile(out, 'utf8')) as { identities: { id: string; embeddings: number[][] }[] };
    expect(doc).toMatchObject({ format: 'faceflow-gallery', version: 1, model: 'm1', dim: 8, galleryVersion: 7, identities: [{ id: 'alice', metadata: { team: 'a' } }] });
    doc.identities[0]!.embeddings[0]!.forEach((x, i) => expect(x).toBeCloseTo(vec(1)[i]!, 12));

    // the exported file restores the same gallery into another store, at a version past its own
    const again = target();
    const restored = await faceflow(['gallery', 'import', out, '--json', ...again], DEADLINE_MS);
    expect(json(restored)).toMatchObject({ version: 8, identities: 1 });
    const relisted = json(await faceflow(['gallery', 'list', '--json', ...again], DEADLINE_MS));
    expect(relisted.identities).toEqual((await list()).identities);
  });

  it.skipIf(skip)('with_a_key_file_import_seals_the_gallery_no_key_or_the_rotated_away_key_is_one_line_and_the_new_key_reads_it', async () => {
    const at = target();
    const [k1, k2] = [path.join(dir, `k1-${uniq()}.key`), path.join(dir, `k2-${uniq()}.key`)];
    const auditLog = path.join(dir, `audit-${uniq()}.jsonl`);
    const run = (args: string[], keyFile?: string): Promise<CliResult> => faceflow(['gallery', ...args, ...at], DEADLINE_MS, { FACEFLOW_GALLERY_KEY_FILE: keyFile, FACEFLOW_AUDIT_LOG: auditLog });
    for (const k of [k1, k2]) expect((await faceflow(['gallery', 'new-key', k], DEADLINE_MS)).code).toBe(0);
    expect((await stat(k1)).mode & 0o777).toBe(0o600);
    expect(await readFile(k1, 'utf8')).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    const again = await faceflow(['gallery', 'new-key', k1], DEADLINE_MS);
    expect([again.code, oneLine(again)]).toEqual([1, [expect.stringMatching(/exists: a key file is never overwritten/)]]);

    const src = await file(`plain-${uniq()}.json`, galleryDoc('m1', 1, [['alice', 1], ['bob', 2]]));
    expect((await run(['import', src], k1)).code).toBe(0);
    const redisPrefix = at[at.indexOf('--gallery-prefix') + 1];
    if (at.includes('--redis')) sealedPrefixes.set(redisPrefix!, k1);
    if (at.includes('--gallery')) expect(await readFile(at[1]!, 'utf8')).not.toContain(String(vec(1)[0]));

    const noKey = await run(['list']);
    expect([noKey.code, oneLine(noKey)]).toEqual([1, [expect.stringMatching(/GALLERY_KEY: .* is encrypted \(key [0-9a-f]{16}\): set FACEFLOW_GALLERY_KEY_FILE/)]]);
    const rotated = await run(['rotate-key', '--new-key-file', k2, '--json'], k1);
    expect(rotated.code).toBe(0);
    if (at.includes('--redis')) sealedPrefixes.set(redisPrefix!, k2);
    expect(json(rotated)).toMatchObject({ toKey: GalleryKey.fromFile(k2).id, fromKey: GalleryKey.fromFile(k1).id, resealed: 0 });
    const oldKey = await run(['list'], k1);
    expect([oldKey.code, oneLine(oldKey)]).toEqual([1, [expect.stringMatching(/GALLERY_KEY: .* is sealed under key [0-9a-f]{16}, but FACEFLOW_GALLERY_KEY_FILE holds key/)]]);
    const listed = json(await run(['list', '--json'], k2));
    expect(listed.identities.map((i: { id: string }) => i.id)).toEqual(['alice', 'bob']);
    expect((await run(['delete', 'bob'], k2)).code).toBe(0);

    // issue 15 item 4: every command is one audit event, the operator named, no template in it
    const audit = (await readFile(auditLog, 'utf8')).trim().split('\n');
    const events = audit.map((l) => AuditEventSchema.decode(Buffer.from(l)));
    expect(events.map((e) => [e.action, e.outcome, e.code, e.identity])).toEqual([
      ['gallery.import', 'ok', undefined, undefined],
      ['gallery.list', 'failed', 'GALLERY_KEY', undefined],
      ['gallery.rotate-key', 'ok', undefined, undefined],
      ['gallery.list', 'failed', 'GALLERY_KEY', undefined],
      ['gallery.list', 'ok', undefined, undefined],
      ['gallery.delete', 'ok', undefined, 'bob'],
    ]);
    expect(events[2]).toMatchObject({ fromKey: GalleryKey.fromFile(k1).id, toKey: GalleryKey.fromFile(k2).id, actorKind: 'operator', service: 'faceflow', source: os.hostname() });
    expect(audit.join('\n')).not.toContain(String(vec(1)[0]));
    expect((await stat(auditLog)).mode & 0o777).toBe(0o600);
  });

  it.skipIf(skip)('refuses a gallery of another model and a bad file in one line, writing nothing', async () => {
    const at = target();
    const run = (args: string[]): Promise<CliResult> => faceflow(['gallery', ...args, ...at], DEADLINE_MS);
    expect((await run(['import', await file(`m1-${uniq()}.json`, galleryDoc('m1', 1, [['alice', 1]]))])).code).toBe(0);
    const before = (await run(['list', '--json'])).stdout;

    const other = await run(['import', await file(`m2-${uniq()}.json`, galleryDoc('m2', 9, [['eve', 3]]))]);
    expect(other.code).toBe(1);
    expect(oneLine(other)).toEqual([expect.stringMatching(/holds "m2" embeddings, the gallery it would replace holds "m1" ones/)]);
    const bad = await run(['import', await file(`bad-${uniq()}.json`, '{"format": "faceflow-gallery", "identities": [')]);
    expect(bad.code).toBe(1);
    expect(oneLine(bad)).toEqual([expect.stringMatching(/GALLERY_FORMAT: gallery file .* is not valid JSON/)]);
    const missing = await run(['import', path.join(dir, 'missing.json')]);
    expect([missing.code, oneLine(missing)]).toEqual([1, [expect.stringMatching(/NOT_FOUND: gallery file not found/)]]);
    expect((await run(['list', '--json'])).stdout).toBe(before);
  });
});

describe('faceflow gallery delete --crops (issue 15: erasure)', () => {
  it('an_erased_person_loses_their_thumbnails_and_the_audit_log_has_the_tombstone', async () => {
    const g = path.join(dir, `g-${uniq()}.json`);
    const crops = await mkdtemp(path.join(dir, 'crops-'));
    const audit = path.join(dir, `audit-${uniq()}.jsonl`);
    const store = new DirCropStore(crops);
    const alice = await store.put('cam-1', 'f-1', 0, Buffer.from('alice-jpeg'));
    const bob = await store.put('cam-1', 'f-2', 0, Buffer.from('bob-jpeg'));
    await store.recordThumbnail('alice', alice);
    await store.recordThumbnail('bob', bob);
    expect((await faceflow(['gallery', 'import', await file(`in-${uniq()}.json`, galleryDoc('m1', 1, [['alice', 1], ['bob', 2]])), '--gallery', g], DEADLINE_MS)).code).toBe(0);

    const r = await faceflow(['gallery', 'delete', 'alice', '--gallery', g, '--crops', crops, '--json'], DEADLINE_MS, { FACEFLOW_AUDIT_LOG: audit });
    expect(r.code, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ crops: 1 });
    const left = await readdirDeep(crops);
    expect(left.some((f) => f.includes('alice')), left.join(' ')).toBe(false);
    expect((await readFile(fileURLToPath(bob), 'utf8'))).toBe('bob-jpeg');
    expect(await stat(fileURLToPath(alice)).catch(() => undefined)).toBeUndefined();
    const events = (await readFile(audit, 'utf8')).trim().split('\n').map((l) => AuditEventSchema.decode(Buffer.from(l)));
    expect(events.at(-1)).toMatchObject({ action: 'gallery.delete', identity: 'alice', outcome: 'ok', tombstone: true, crops: 1 });

    const again = await faceflow(['gallery', 'delete', 'alice', '--gallery', g, '--crops', crops], DEADLINE_MS);
    expect(again.code).not.toBe(0);
    expect(oneLine(again)).toEqual([expect.stringMatching(/no identity "alice" in the gallery and no thumbnails of it in the crop folder: nothing erased/)]);
    const bad = await faceflow(['gallery', 'delete', 'bob', '--gallery', g, '--crops', path.join(dir, 'no-such-folder')], DEADLINE_MS);
    expect(bad.code).toBe(2);
    expect(oneLine(bad)).toEqual([expect.stringMatching(/--crops .* is not a folder/)]);
  });
});

async function readdirDeep(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) out.push(...(await readdirDeep(p)));
    else out.push(`${p}:${await readFile(p, 'latin1')}`);
  }
  return out;
}

describe('faceflow gallery usage', () => {
  it('needs exactly one store, a known subcommand and a redis URL: usage errors, exit 2', async () => {
    const none = await faceflow(['gallery', 'list'], DEADLINE_MS);
    expect([none.code, oneLine(none)]).toEqual([2, [expect.stringMatching(/either --gallery FILE or --redis URL/)]]);
    const both = await faceflow(['gallery', 'list', '--gallery', 'g.json', '--redis', 'redis://127.0.0.1:1'], DEADLINE_MS);
    expect(both.code).toBe(2);
    const url = await faceflow(['gallery', 'list', '--redis', 'http://127.0.0.1'], DEADLINE_MS);
    expect([url.code, oneLine(url)]).toEqual([2, [expect.stringMatching(/--redis must be a redis:\/\/ or rediss:\/\/ URL/)]]);
    expect((await faceflow(['gallery', 'frob'], DEADLINE_MS)).code).toBe(2);
    const help = await faceflow(['gallery', '--help'], DEADLINE_MS);
    expect([help.code, help.stdout]).toEqual([0, expect.stringMatching(/faceflow gallery import FILE/)]);
    for (const sub of ['import', 'export', 'list', 'delete']) expect((await faceflow(['gallery', sub, '--help'], DEADLINE_MS)).code).toBe(0);
    const missing = await faceflow(['gallery', 'list', '--gallery', path.join(dir, 'nope.json')], DEADLINE_MS);
    expect([missing.code, oneLine(missing)]).toEqual([1, [expect.stringMatching(/NOT_FOUND: gallery file not found/)]]);
    // a plaintext URL: without the TLS files of a secured suite run (FACEFLOW_INFRA_SECURE=1)
    const unreachable = await faceflow(['gallery', 'list', '--redis', 'redis://127.0.0.1:1'], DEADLINE_MS, REDIS_PLAINTEXT_ENV);
    expect([unreachable.code, oneLine(unreachable)]).toEqual([1, [expect.stringMatching(/STORE_UNAVAILABLE: cannot connect to redis/)]]);
  });
});
