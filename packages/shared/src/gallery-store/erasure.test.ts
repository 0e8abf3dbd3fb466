import { mkdtemp, readFile, rm, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditTrail } from '../audit.js';
import { DirCropStore } from '../crop-store.js';
import { silentLogger } from '../observability.js';
import { AuditEventSchema } from '../schemas/audit-event.js';
import { eraseIdentity } from './erasure.js';
import { MemoryGalleryStore } from './memory-gallery-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'faceflow-erase-'));
});
afterEach(async () => {
  await chmod(path.join(dir, 'crops', 'cam'), 0o700).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

const v = [0.6, 0.8];

describe('eraseIdentity', () => {
  it('erases_the_store_the_crops_and_what_each_eraser_holds_and_records_one_tombstone', async () => {
    const store = new MemoryGalleryStore();
    await store.put('alice', [v]);
    const crops = new DirCropStore(path.join(dir, 'crops'));
    const ref = await crops.put('cam', 'f1', 0, Buffer.from('jpeg'));
    await crops.recordThumbnail('alice', ref);
    const file = path.join(dir, 'audit.jsonl');
    const trail = new AuditTrail({ logger: silentLogger, service: 'faceflow', file });
    const clusters: string[] = [];
    const r = await eraseIdentity({
      store,
      name: 'alice',
      crops,
      erasers: [{ what: 'unknown clusters', erase: async (id) => (clusters.push(id), 1) }],
      audit: { trail, gallery: 'g', actorKind: 'operator', actor: 'dpo', source: 'host' },
    });
    expect(r).toMatchObject({ change: { type: 'delete', identity: 'alice' }, crops: 1, erased: { 'unknown clusters': 1 } });
    expect(await store.get('alice')).toBeUndefined();
    expect(existsSync(fileURLToPath(ref))).toBe(false);
    expect(clusters).toEqual(['alice']);
    const events = (await readFile(file, 'utf8')).trim().split('\n').map((l) => AuditEventSchema.decode(Buffer.from(l)));
    expect(events).toMatchObject([{ action: 'gallery.delete', outcome: 'ok', identity: 'alice', tombstone: true, crops: 1, version: 2 }]);
  });

  it('a_second_erasure_is_not_found_and_one_that_failed_half_way_finishes_when_run_again', async () => {
    const store = new MemoryGalleryStore();
    await store.put('alice', [v]);
    const crops = new DirCropStore(path.join(dir, 'crops'));
    const ref = await crops.put('cam', 'f1', 0, Buffer.from('jpeg'));
    await crops.recordThumbnail('alice', ref);
    const file = path.join(dir, 'audit.jsonl');
    const audit = { trail: new AuditTrail({ logger: silentLogger, service: 'faceflow', file }), gallery: 'g', actorKind: 'operator' as const, actor: 'dpo', source: 'host' };
    // the crop folder refuses the deletion: the store is erased, the crops are not, the failure is audited
    await chmod(path.join(dir, 'crops', 'cam'), 0o500);
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) {
      await expect(eraseIdentity({ store, name: 'alice', crops, audit })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
      expect(await store.get('alice')).toBeUndefined();
      expect(existsSync(fileURLToPath(ref))).toBe(true);
    }
    await chmod(path.join(dir, 'crops', 'cam'), 0o700);
    // run again: what was left goes, and the tombstone is recorded
    const again = await eraseIdentity({ store, name: 'alice', crops, audit });
    expect(again).toMatchObject({ change: asRoot ? { type: 'delete' } : null, crops: 1 });
    expect(existsSync(fileURLToPath(ref))).toBe(false);
    // and once more: nothing of her anywhere
    await expect(eraseIdentity({ store, name: 'alice', crops, audit })).rejects.toMatchObject({ code: 'NOT_FOUND', message: expect.stringMatching(/^no identity "alice" in the gallery and no thumbnails of it in the crop folder: nothing erased/) as unknown });
    const events = (await readFile(file, 'utf8')).trim().split('\n').map((l) => AuditEventSchema.decode(Buffer.from(l)));
    expect(events.map((e) => [e.outcome, e.tombstone, e.code])).toEqual([...(asRoot ? [] : [['failed', undefined, 'STORE_UNAVAILABLE']]), ['ok', true, undefined], ['failed', undefined, 'NOT_FOUND']]);
  });
});
