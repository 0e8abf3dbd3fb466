/**
 * The house rules of ../shared/DESIGN.md, checked on the sources: the engine never imports Kafka, Redis or
 * HTTP server code; a service never imports another service; only the runtime adapter loads TF.js, and only
 * the adapters load their third-party clients.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'dist') await walk(p);
      else if (e.isFile() && p.endsWith('.ts') && !/\.(test|testkit)\.ts$/.test(p)) out.push(p);
    }
  };
  await walk(path.join(root, dir));
  return out;
}

/** Value imports (not `import type`) and dynamic imports/requires of each file. */
async function valueImports(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  const specs: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)(?!\.[A-Z])/g)) specs.push(m[1]!); // import('x').Type is a type
  return specs;
}

async function offenders(dir: string, banned: RegExp, allow: (file: string) => boolean = () => false): Promise<string[]> {
  const bad: string[] = [];
  for (const f of await sources(dir)) {
    if (allow(f)) continue;
    for (const s of await valueImports(f)) if (banned.test(s)) bad.push(`${path.relative(root, f)} imports ${s}`);
  }
  return bad;
}

describe('architecture invariants', () => {
  it('the engine never imports Kafka, Redis or HTTP server code', async () => {
    expect(await offenders('packages/engine/src', /^(kafkajs|ioredis|@faceflow\/shared\/(kafka|redis)|fastify|express|@faceflow\/(ingest|embedder|matcher|alerts))$/)).toEqual([]);
  });

  it('only the runtime adapter loads TensorFlow.js', async () => {
    expect(await offenders('packages', /^@tensorflow\//, (f) => f.includes(`${path.sep}runtime${path.sep}`))).toEqual([]);
  });

  it('only the adapters load kafkajs, ioredis and prom-client', async () => {
    expect(await offenders('packages', /^kafkajs$/, (f) => f.endsWith('kafka-bus.ts'))).toEqual([]);
    expect(await offenders('packages', /^ioredis$/, (f) => f.endsWith('redis-gallery-store.ts'))).toEqual([]);
    expect(await offenders('packages', /^prom-client$/, (f) => f.endsWith(`shared${path.sep}src${path.sep}metrics.ts`))).toEqual([]);
    expect(await offenders('services', /^(kafkajs|ioredis|prom-client)$/)).toEqual([]);
  });

  it('the media adapter (@faceflow/shared/media) imports only Node builtins and its own package (issue 13)', async () => {
    expect(await offenders('packages/shared/src/media', /^(?!node:|\.)/)).toEqual([]);
  });

  it('a service never imports another service', async () => {
    for (const s of ['ingest', 'embedder', 'matcher', 'alerts']) {
      const others = ['ingest', 'embedder', 'matcher', 'alerts'].filter((o) => o !== s).join('|');
      expect(await offenders(`services/${s}`, new RegExp(`^(@faceflow/(${others})|\\.\\./+(\\.\\./)*(services/)?(${others})(/|$))`))).toEqual([]);
    }
  });

  it('outside the engine a face is aligned by the engine\'s alignChip, the embedder\'s own chip', async () => {
    // a named aligner (dlib's 150 px chip, ArcFace's 112 px one) is right for one embedder only: with
    // --embedder sface a dlib chip is a wrong input that still runs (issue 11). train.ts is the exception:
    // a projection head is trained on dlib chips, its augmentation sizes faces by the dlib chip's geometry.
    const bad: string[] = [];
    for (const dir of ['packages/cli/src', 'services']) {
      for (const f of await sources(dir)) {
        if (f.endsWith(`commands${path.sep}train.ts`)) continue;
        if (/\balign(Dlib|ArcFace)Chip\b/.test(await readFile(f, 'utf8'))) bad.push(path.relative(root, f));
      }
    }
    expect(bad).toEqual([]);
  });
});
