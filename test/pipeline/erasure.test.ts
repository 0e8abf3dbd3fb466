/**
 * Erasure (issue 15 item 3, GDPR art. 17), end to end against the real Redis and Kafka of scripts/infra.sh:
 * a person is enrolled, seen (the alerts stage is driven with Match messages naming them, whose crops are in
 * a crop folder), then erased; afterwards nothing of them is left in the gallery (every Redis key under the
 * test's prefix, raw; or the gallery file), in a matcher's memory, or in the crop folder (names and contents),
 * neither their name, their metadata, nor their template (its float32 bytes, a few of its values as text),
 * and the audit topic holds the tombstone. A second erasure is a clear NOT_FOUND.
 *
 * Two paths: Redis, where the services erase (the store's delete notifies the matcher's cache and alerts,
 * which deletes the thumbnails it kept: no crop folder given to the erasure), and a gallery file, where the
 * erasure is given the crop folder (the `faceflow gallery delete NAME --crops DIR` path). Each with and
 * without the gallery key (templates sealed at rest or not).
 */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuditEventSchema,
  AuditTrail,
  DirCropStore,
  eraseIdentity,
  FileGalleryStore,
  GalleryKey,
  MatchSchema,
  topicNames,
  type ConsumedMessage,
  type GalleryStore,
  type HandlerContext,
  type Match,
} from '@faceflow/shared';
import { createLogger } from '@faceflow/shared/ops';
import { KafkaBus } from '@faceflow/shared/kafka';
import { RedisGalleryStore, subscribeGalleryChanges } from '@faceflow/shared/redis';
import { AlertsStage } from '@faceflow/alerts';
import { GalleryCache } from '@faceflow/matcher';
import { config, kafka, probeKafka, probeRedis, rawRedisOptions, redis, skipUnlessReachable, uniq, until } from '../shared/infra.js';
import { kcat } from './services.js';

const probes = [await probeRedis(), await probeKafka()];
const skip = probes.some((p) => skipUnlessReachable(p));
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

const ctx: HandlerContext = { signal: new AbortController().signal, heartbeat: async () => undefined, markProcessed: () => undefined };
const logger = createLogger({ level: 'silent' });

/** A unit vector of 128 distinctive values (no two people's templates share a byte pattern). */
function template(seed: number): number[] {
  const v = Array.from({ length: 128 }, (_, i) => Math.sin(seed * 1000 + i * 7.3) + 0.01 * i);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

/** What of a person could be left behind: their name, metadata, and template (float32 and float64 bytes, values as text). */
function tracesOf(name: string, metadata: string, t: number[]): { text: string[]; bytes: Buffer[] } {
  const f32 = Buffer.from(new Float32Array(t).buffer);
  const f64 = Buffer.from(new Float64Array(t).buffer);
  const values = [0, 1, 2, 64, 127].flatMap((i) => [String(t[i]), String(Math.fround(t[i]!)), t[i]!.toFixed(6)]);
  return { text: [name, metadata, ...values], bytes: [f32.subarray(0, 32), f32.subarray(256, 288), f64.subarray(0, 32)] };
}

function findTraces(where: string, data: Buffer, traces: { text: string[]; bytes: Buffer[] }): string[] {
  const text = data.toString('utf8');
  return [
    ...traces.text.filter((s) => text.includes(s)).map((s) => `${where}: the text ${JSON.stringify(s)}`),
    ...traces.bytes.filter((b) => data.includes(b)).map(() => `${where}: template bytes`),
  ];
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

let offset = 0;
function matchOf(camera: string, trackId: string, n: number, identity: string, cropRef: string): ConsumedMessage {
  const m: Match = {
    frameId: `f${n}`,
    cameraId: camera,
    captureTs: Date.UTC(2026, 0, 1) + n * 100,
    faceIndex: 0,
    trackId,
    box: { x: 0, y: 0, width: 50, height: 50 },
    identity,
    score: 0.9,
    candidates: [],
    quality: 0.8,
    galleryVersion: 1,
    track: { identity, confidence: 0.9 - (n % 3) * 0.25, startTs: Date.UTC(2026, 0, 1), faces: n + 1, reason: 'match', bestCropRef: cropRef },
    cropRef,
  };
  return { topic: 'matches', partition: 0, offset: String(offset++), key: camera, value: MatchSchema.encode(m), headers: {}, timestamp: Date.now() };
}

type Kind = 'redis' | 'file';

describe.skipIf(skip)('erasure (real Redis and Kafka)', () => {
  for (const kind of ['redis', 'file'] as Kind[]) {
    for (const sealed of [false, true]) {
      it(`an_erased_person_leaves_no_template_name_or_thumbnail_behind (${kind}, ${sealed ? 'sealed' : 'plaintext'})`, async () => {
        const id = uniq();
        const name = `erin-${id}`;
        const metadata = `Erin Example ${id}`;
        const tErin = template(1);
        const traces = tracesOf(name, metadata, tErin);
        const key = sealed ? GalleryKey.generate().key : undefined;
        const keyOpt = key ? { key } : {};
        const work = await mkdtemp(path.join(os.tmpdir(), 'faceflow-erasure-'));
        cleanups.push(() => rm(work, { recursive: true, force: true }));
        const prefix = `test:erase:${id}:`;
        const galleryFile = path.join(work, 'gallery.json');
        const store: GalleryStore = kind === 'redis' ? await RedisGalleryStore.open({ ...redis, keyPrefix: prefix, ...keyOpt }) : await FileGalleryStore.open(galleryFile, { ...keyOpt });
        cleanups.push(() => store.close());
        const raw = new Redis(config.redisUrl, { ...rawRedisOptions(), maxRetriesPerRequest: 2 });
        cleanups.push(async () => {
          const keys = await raw.keys(`${prefix}*`);
          if (keys.length) await raw.del(...keys);
          raw.disconnect();
        });
        const topics = topicNames(`test-erase-${id}`);
        const bus = new KafkaBus({ ...kafka, clientId: `erasure-${id}`, logger });
        cleanups.push(async () => {
          await bus.deleteTopics([topics.audit]).catch(() => undefined);
          await bus.close();
        });
        await bus.createTopics([{ topic: topics.audit, partitions: 1 }]);
        const trail = new AuditTrail({ logger, service: 'faceflow', bus, topic: topics.audit });

        // enrolled, with a control person who stays
        await store.put(name, [tErin], { metadata: { fullName: metadata } });
        await store.put('bob', [template(2)]);
        // a matcher holding the gallery (Redis: it follows the notifications)
        const cache = kind === 'redis' ? new GalleryCache({ store, model: 'test', logger }) : undefined;
        if (cache) {
          await cache.start();
          cleanups.push(() => cache.close());
          expect(cache.current?.names().sort()).toEqual(['bob', name]);
        }

        // seen: the embedder's crops (each of Erin's holds her name, standing in for her face: a crop of hers
        // left behind shows in the grep), alerts' events point at some of them
        const crops = new DirCropStore(path.join(work, 'crops'));
        const stage = new AlertsStage({ eventsTopic: topics.identityEvents, rules: { minFaces: 1, minStable: 1 }, crops, keepAllCrops: false, logger });
        let stopChanges: (() => Promise<void>) | undefined;
        if (kind === 'redis') {
          // as services/alerts/src/main.ts: a deletion in the gallery erases the person's tracks and thumbnails
          stopChanges = await subscribeGalleryChanges({ ...redis, keyPrefix: prefix, logger }, (c) => {
            if (c.type === 'delete') void stage.forget(c.identity);
          });
          cleanups.push(() => stopChanges!());
        }
        const events = [];
        for (const [camera, track] of [['door', 'e1'], ['lobby', 'e2']] as const) {
          for (let n = 0; n < 4; n++) {
            const ref = await crops.put(camera, `${track}-${n}`, 0, Buffer.from(`FAKEJPEG ${name} ${n}`));
            const r = await stage.process([matchOf(camera, track, n, name, ref)], ctx);
            r.commit?.();
            events.push(...(r.outputs ?? []).flatMap((o) => o.messages));
          }
        }
        // bob, 10 s later at the door: Erin's track there has ended (its thumbnails are findable only through
        // the erasure index); her lobby track is still live
        const bobRef = await crops.put('door', 'b-0', 0, Buffer.from('FAKEJPEG bob'));
        const rb = await stage.process([matchOf('door', 'b1', 100, 'bob', bobRef)], ctx);
        rb.commit?.();
        expect((rb.outputs ?? []).flatMap((o) => o.messages.map((m) => m.value.toString('utf8'))).join('\n')).toMatch(/"type":"exit","trackId":"e1"/);
        await stage.settled();
        const before = await filesUnder(crops.dir);
        expect(before.filter((f) => !f.includes('.erasure')).length).toBeGreaterThan(2); // Erin's thumbnails and candidates are kept
        expect(events.length).toBeGreaterThan(1);

        // erased
        const r = await eraseIdentity({
          store,
          name,
          ...(kind === 'file' ? { crops } : {}),
          audit: { trail, gallery: kind === 'redis' ? prefix : galleryFile, actorKind: 'operator', actor: 'dpo', source: 'test' },
        });
        expect(r.change).toMatchObject({ type: 'delete', identity: name });
        if (kind === 'redis') {
          // the notifications: the matcher's copy and alerts' thumbnails
          await until(() => cache!.current?.names().includes(name) === false, 10_000, 'the matcher drops the person');
          await until(() => !existsSync(crops.indexFileOf(name)), 10_000, "alerts erases the person's thumbnails");
          await stage.settled();
        }

        // nothing of them remains
        const found: string[] = [];
        if (kind === 'redis') {
          for (const k of await raw.keys(`${prefix}*`)) {
            found.push(...findTraces(`redis key name ${k}`, Buffer.from(k), traces));
            const type = await raw.type(k);
            const values: Buffer[] =
              type === 'hash'
                ? Object.entries(await raw.hgetallBuffer(k)).flatMap(([f, v]) => [Buffer.from(f), v])
                : type === 'string'
                  ? [(await raw.getBuffer(k)) ?? Buffer.alloc(0)]
                  : [(await raw.dumpBuffer(k)) ?? Buffer.alloc(0)];
            for (const v of values) found.push(...findTraces(`redis ${k}`, v, traces));
          }
          expect(await raw.hexists(`${prefix}identities`, 'bob')).toBe(1); // the control is still there
        } else {
          const file = await readFile(galleryFile);
          found.push(...findTraces('gallery file', file, traces));
          expect(file.toString('utf8')).toContain('bob');
        }
        for (const f of await filesUnder(crops.dir)) {
          found.push(...findTraces(`crop folder file name ${f}`, Buffer.from(f), traces));
          found.push(...findTraces(`crop file ${f}`, await readFile(f), traces));
        }
        expect(found).toEqual([]);
        expect(existsSync(crops.indexFileOf(name))).toBe(false);
        expect(existsSync(crops.fileOf(bobRef))).toBe(true); // only Erin's went
        if (kind === 'redis') {
          // the alerts service that heard of it names her in no event any more: no exit of her live track, and
          // a late match that still names her (made before the matcher heard) is unknown
          const late = await stage.process([matchOf('yard', 'e3', 200, name, await crops.put('yard', 'e3', 0, Buffer.from('FAKEJPEG late')))], ctx);
          late.commit?.();
          const after = [...(late.outputs ?? []), ...stage.flush()].flatMap((o) => o.messages.map((m) => m.value.toString('utf8')));
          expect(after.join('\n')).not.toContain(name);
          expect(after.length).toBeGreaterThan(0);
        }

        // the tombstone is on the audit topic
        await until(async () => (await kcat(topics.audit)).length > 0, 20_000, 'the audit topic has the event');
        const audit = (await kcat(topics.audit)).map((m) => AuditEventSchema.decode(Buffer.from(m.value)));
        expect(audit).toMatchObject([{ action: 'gallery.delete', outcome: 'ok', identity: name, tombstone: true, actorKind: 'operator', actor: 'dpo' }]);
        expect(JSON.stringify(audit)).not.toContain(String(tErin[0]));

        // again: a clear "not found", nothing changed, the failure audited
        await expect(eraseIdentity({ store, name, ...(kind === 'file' ? { crops } : {}), audit: { trail, gallery: prefix, actorKind: 'operator', actor: 'dpo', source: 'test' } })).rejects.toMatchObject({
          code: 'NOT_FOUND',
          message: expect.stringMatching(/^no identity "erin-.*" in the gallery.*: nothing erased/) as unknown,
        });
        await until(async () => (await kcat(topics.audit)).length === 2, 20_000, 'the failed erasure is audited');
      });
    }
  }
});
