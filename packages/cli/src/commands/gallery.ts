/**
 * faceflow gallery import | export | list | delete: a gallery in a file (--gallery FILE) or in Redis (--redis
 * URL, --gallery-prefix: the matcher's FACEFLOW_REDIS_URL and FACEFLOW_GALLERY_PREFIX). The work is in
 * @faceflow/shared's gallery-admin.ts; this parses, opens the store, makes the one call and prints (issue 12:
 * nothing wrote a gallery file into Redis, so a Redis that came back empty could not be restored).
 *
 * Encryption (issue 15, docs/security.md): every subcommand takes the key-encryption key from the file named
 * by FACEFLOW_GALLERY_KEY_FILE; `new-key FILE` writes a new one (mode 0600), `rotate-key` seals the gallery
 * under a new key (re-wrapping its data key) and/or a new data key (re-sealing every record).
 */
import { stat } from 'node:fs/promises';
import { auditedGalleryCommand, defineConfig, DirCropStore, eraseIdentity, exportGalleryFile, GALLERY_KEY_ENV, GalleryKey, importGalleryFile, listGallery } from '@faceflow/shared';
import { openGalleryFile, redisConfigFields, redisConnectionOf, rotateGalleryKey, writeNewGalleryKey, type AuditAction, type GalleryStore } from '@faceflow/shared';
import { DEFAULT_GALLERY_KEY_PREFIX, RedisGalleryStore, redactUrl } from '@faceflow/shared/redis';
import { runCommand, str, UsageError, type CommandContext, type CommandSpec } from '../cli.js';
import { galleryKeyOption } from '../gallery-key.js';

const STORE_FLAGS = { gallery: { type: 'string' as const }, redis: { type: 'string' as const }, 'gallery-prefix': { type: 'string' as const } };
const STORE_HELP = [
  '  --gallery FILE         the gallery file (faceflow enroll writes one)',
  '  --redis URL            or the gallery in Redis, as the services hold it (their FACEFLOW_REDIS_URL)',
  `  --gallery-prefix P     its key prefix (the matcher's FACEFLOW_GALLERY_PREFIX; default "${DEFAULT_GALLERY_KEY_PREFIX}")`,
];
const STORE_USAGE = '(--gallery FILE | --redis URL [--gallery-prefix P])';

interface Target {
  store: GalleryStore;
  /** the store, in words (no password) */
  name: string;
}

/** Opens the store the flags name; `create`: a missing gallery file is an empty gallery (import writes it). */
async function openTarget(ctx: CommandContext, create: boolean): Promise<Target> {
  const [file, url, prefix] = [str(ctx, 'gallery'), str(ctx, 'redis'), str(ctx, 'gallery-prefix')];
  if ((file === undefined) === (url === undefined)) throw new UsageError('give the gallery as either --gallery FILE or --redis URL');
  if (file !== undefined) {
    if (prefix !== undefined) throw new UsageError('--gallery-prefix goes with --redis, not --gallery');
    return { store: await openGalleryFile(file, { create, ...galleryKeyOption() }), name: file };
  }
  const protocol = URL.canParse(url!) ? new URL(url!).protocol : '';
  if (protocol !== 'redis:' && protocol !== 'rediss:') throw new UsageError(`--redis must be a redis:// or rediss:// URL, got "${url}"`);
  const keyPrefix = prefix ?? DEFAULT_GALLERY_KEY_PREFIX;
  // issue 15: the ACL login and TLS files of FACEFLOW_REDIS_* (a bad one is one INVALID_CONFIG line), for the URL of --redis
  const connection = redisConnectionOf(defineConfig(redisConfigFields).load({ ...process.env, FACEFLOW_REDIS_URL: url! }));
  const store = await RedisGalleryStore.open({ ...connection, keyPrefix, connectTimeoutMs: 3_000, ...galleryKeyOption() });
  return { store, name: `${redactUrl(url!)} (prefix "${keyPrefix}")` };
}

/** `run` with its audit record (FACEFLOW_AUDIT_LOG; shared's auditedGalleryCommand): the gallery the flags name. */
function audited<T>(ctx: CommandContext, action: AuditAction, run: () => Promise<T>, describe?: Parameters<typeof auditedGalleryCommand<T>>[2]): Promise<T> {
  const redis = str(ctx, 'redis');
  const gallery = str(ctx, 'gallery') ?? `${redis ? redactUrl(redis) : '?'} ${str(ctx, 'gallery-prefix') ?? DEFAULT_GALLERY_KEY_PREFIX}`;
  const identity = action === 'gallery.delete' ? ctx.positionals[0] : undefined;
  return auditedGalleryCommand({ file: process.env.FACEFLOW_AUDIT_LOG, action, gallery, identity }, run, describe);
}

/** Opens the store, runs `fn` on it, closes it; `fn`'s result comes back with the store's name. */
async function withTarget<T>(ctx: CommandContext, create: boolean, fn: (store: GalleryStore, name: string) => Promise<T>): Promise<{ r: T; name: string }> {
  const t = await openTarget(ctx, create);
  try {
    return { r: await fn(t.store, t.name), name: t.name };
  } finally {
    await t.store.close().catch(() => undefined);
  }
}

const importCmd: CommandSpec = {
  name: 'gallery import',
  summary: "replace a gallery with a gallery file's, at once (restores Redis after it came back empty; every matcher reloads it)",
  usage: `faceflow gallery import FILE ${STORE_USAGE}`,
  flags: { ...STORE_FLAGS },
  help: [
    '  FILE                   a gallery file (faceflow enroll or gallery export writes one); refused, with nothing',
    '                         written, when it does not parse or holds another model or size than the gallery it replaces',
    ...STORE_HELP,
  ],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const { r, name } = await audited(ctx, 'gallery.import', () => withTarget(ctx, true, (store) => importGalleryFile(store, file, galleryKeyOption())), (x) => ({ version: x.r.version }));
    const shown = r.removed.slice(0, 10).join(', ') + (r.removed.length > 10 ? ', ...' : '');
    const removed = r.removed.length ? `; removed ${r.removed.length} not in the file: ${shown}` : '';
    ctx.out(`imported ${r.identities} identities from ${file} into ${name}: version ${r.version}${r.model ? `, model ${r.model}` : ''}${removed}`, { target: name, ...r });
  },
};

const exportCmd: CommandSpec = {
  name: 'gallery export',
  summary: 'write a gallery to a gallery file (the format faceflow enroll writes), the file to restore it from',
  usage: `faceflow gallery export FILE ${STORE_USAGE} [--model NAME]`,
  flags: { ...STORE_FLAGS, model: { type: 'string' } },
  help: [
    '  FILE                   written atomically; an empty gallery is refused (the file is left as it was)',
    ...STORE_HELP,
    '  --model NAME           the embedding model to record when the gallery names none',
  ],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const model = str(ctx, 'model');
    const options = { ...(model !== undefined ? { model } : {}), ...galleryKeyOption() };
    const { r, name } = await audited(ctx, 'gallery.export', () => withTarget(ctx, false, (store) => exportGalleryFile(store, file, options)), (x) => ({ version: x.r.version }));
    ctx.out(`exported ${r.identities} identities from ${name} to ${file}: version ${r.version}${r.model ? `, model ${r.model}` : ' (no model recorded: pass --model)'}`, { target: name, file, ...r });
  },
};

const listCmd: CommandSpec = {
  name: 'gallery list',
  summary: 'the identities of a gallery: name, embeddings, last change; with its version, model and size',
  usage: `faceflow gallery list ${STORE_USAGE} [--json]`,
  flags: { ...STORE_FLAGS },
  help: [...STORE_HELP],
  maxPositionals: 0,
  async run(ctx) {
    const { r, name } = await audited(ctx, 'gallery.list', () => withTarget(ctx, false, listGallery), (x) => ({ version: x.r.version }));
    const head = `${name}: version ${r.version}, ${r.identities.length} identities${r.model ? `, model ${r.model}` : ''}${r.dim ? `, dim ${r.dim}` : ''}`;
    const rows = r.identities.map((i) => `${i.id.padEnd(24)} ${String(i.embeddings).padStart(4)} embeddings  ${i.updatedAt ? new Date(i.updatedAt).toISOString() : '-'}`);
    ctx.out([head, ...rows].join('\n'), r);
  },
};

const deleteCmd: CommandSpec = {
  name: 'gallery delete',
  summary: 'erase one identity: from the gallery (every matcher drops it) and, with --crops, its thumbnails; an unknown name fails',
  usage: `faceflow gallery delete NAME ${STORE_USAGE} [--crops DIR]`,
  flags: { ...STORE_FLAGS, crops: { type: 'string' as const } },
  help: [...STORE_HELP, '  --crops DIR            the crop folder (FACEFLOW_CROP_DIR): delete the thumbnails of the person\'s events too (issue 15)'],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const id = ctx.positionals[0]!;
    const crops = await cropStoreOf(str(ctx, 'crops'));
    const erase = (store: GalleryStore) => eraseIdentity({ store, name: id, ...(crops ? { crops } : {}) });
    const { r, name } = await audited(ctx, 'gallery.delete', () => withTarget(ctx, false, erase), (x) => ({
      ...(x.r.change ? { version: x.r.change.version } : {}),
      tombstone: true,
      ...(x.r.crops !== undefined ? { crops: x.r.crops } : {}),
    }));
    const thumbs = r.crops !== undefined ? `; ${r.crops} thumbnail(s) erased` : '';
    ctx.out(`deleted ${JSON.stringify(id)} from ${name}: version ${r.change?.version ?? 'unchanged'}${thumbs}`, { target: name, ...(r.change ?? {}), ...(r.crops !== undefined ? { crops: r.crops } : {}) });
  },
};

/** The crop folder of --crops (a missing or non-folder path is one usage line), or undefined. */
async function cropStoreOf(dir: string | undefined): Promise<DirCropStore | undefined> {
  if (dir === undefined) return undefined;
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) throw new UsageError(`--crops ${dir} is not a folder: give the crop folder (the services' FACEFLOW_CROP_DIR)`);
  return new DirCropStore(dir);
}

const newKeyCmd: CommandSpec = {
  name: 'gallery new-key',
  summary: `write a new gallery key file (32 random bytes, base64, one line; mode 0600) for ${GALLERY_KEY_ENV}`,
  usage: 'faceflow gallery new-key FILE',
  flags: {},
  help: ['  FILE                   the key file to create; an existing file is never overwritten'],
  minPositionals: 1,
  maxPositionals: 1,
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const { keyId } = await writeNewGalleryKey(file);
    ctx.out(`wrote gallery key ${keyId} to ${file} (mode 0600): set ${GALLERY_KEY_ENV}=${file}; keep a copy offline, a gallery cannot be read without it`, { file, keyId });
  },
};

const rotateKeyCmd: CommandSpec = {
  name: 'gallery rotate-key',
  summary: 'seal a gallery under a new key file (its data key re-wrapped) and/or a new data key (every record re-sealed); seals a plaintext gallery',
  usage: `faceflow gallery rotate-key ${STORE_USAGE} [--new-key-file FILE] [--new-data-key]`,
  flags: { ...STORE_FLAGS, 'new-key-file': { type: 'string' }, 'new-data-key': { type: 'boolean', default: false } },
  help: [
    ...STORE_HELP,
    `  --new-key-file FILE    the new key-encryption key (faceflow gallery new-key writes one); the gallery is opened`,
    `                         with ${GALLERY_KEY_ENV}, and afterwards only FILE opens it: point every service at FILE`,
    '  --new-data-key         also seal every record again under a new data key (when the data key may have leaked)',
    `  Without --new-key-file the key stays ${GALLERY_KEY_ENV}'s: with --new-data-key, or to seal a plaintext gallery.`,
  ],
  maxPositionals: 0,
  async run(ctx) {
    const newFile = str(ctx, 'new-key-file');
    const newDataKey = ctx.values['new-data-key'] === true;
    const key = newFile !== undefined ? GalleryKey.fromFile(newFile) : galleryKeyOption().key;
    if (!key) throw new UsageError(`give --new-key-file FILE, or set ${GALLERY_KEY_ENV} to seal the gallery under that key`);
    const rotate = () => withTarget(ctx, false, (store, name) => rotateGalleryKey(store, name, { key, newDataKey }));
    const { r, name } = await audited(ctx, 'gallery.rotate-key', rotate, (x) => ({ ...(x.r.fromKey ? { fromKey: x.r.fromKey } : {}), toKey: x.r.toKey }));
    const how = r.fromKey === undefined ? 'sealed the plaintext gallery' : r.resealed > 0 ? `re-sealed ${r.resealed} identities under data key ${r.toDataKey}` : `re-wrapped data key ${r.toDataKey}`;
    ctx.out(`${name}: ${how}, key ${r.fromKey ?? '(none)'} -> ${r.toKey}${newFile !== undefined ? `; set ${GALLERY_KEY_ENV}=${newFile} for every service and command` : ''}`, { target: name, ...r });
  },
};

const SUBCOMMANDS: Record<string, CommandSpec> = { import: importCmd, export: exportCmd, list: listCmd, delete: deleteCmd, 'new-key': newKeyCmd, 'rotate-key': rotateKeyCmd };

export const GALLERY_SUMMARY = 'a gallery file or the Redis gallery: gallery import FILE | export FILE | list | delete NAME | new-key FILE | rotate-key';

export async function runGallery(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const spec = sub ? SUBCOMMANDS[sub] : undefined;
  if (!spec) {
    const lines = Object.values(SUBCOMMANDS).map((s) => `  ${s.usage}\n      ${s.summary}`);
    const help = sub === '--help' || sub === '-h';
    const what = help ? '' : sub ? `faceflow gallery: unknown subcommand "${sub}"\n` : 'faceflow gallery: expected a subcommand\n';
    (help ? process.stdout : process.stderr).write(`${what}${lines.join('\n')}\n`);
    return help ? 0 : 2;
  }
  return runCommand(spec, rest);
}
