/**
 * The fused embedder (issue 11 step 4): the weighted concatenation, each part on its own bytes of the chip,
 * errors, dispose; with the real parts: no tensor or RSS leak, and in the engine the fused embedding is the
 * parts' own engine embeddings, scaled (so its squared distance is the weighted sum of theirs).
 */
import { describe, expect, it } from 'vitest';
import { FaceflowError } from '@faceflow/shared';
import { decodeImage } from '../image/image.js';
import { resolveModel } from '../registry/index.js';
import { initRuntime, tf } from '../runtime/tf.js';
import { FaceEngine } from '../recognize/engine.js';
import { GROUP_PHOTOS } from '../testkit/fixtures.testkit.js';
import { failure } from '../testkit/failure.testkit.js';
import { FusedEmbedder, type FusedPartEmbedder } from './fused.js';
import { DlibResNetEmbedder, EMBED_INPUT } from './embedder.js';
import { SFaceEmbedder, SFACE_INPUT } from './sface.js';

/** A part that embeds a chip as [sum of its bytes, its first byte, 1] (not unit norm: the wrapper normalises) and records calls. */
function fakePart(log: string[], name: string, failLoad = false): { weight: number; load: () => Promise<{ embedder: FusedPartEmbedder; dim: number; chipBytes: number }> } & { disposed: () => boolean } {
  let disposed = false;
  return {
    weight: 0,
    disposed: () => disposed,
    load: async () => {
      if (failLoad) throw new FaceflowError('MODEL_LOAD', `${name} failed`);
      return {
        dim: 3,
        chipBytes: name === 'a' ? 2 : 3,
        embedder: {
          run: async (chips) => {
            log.push(`${name}:${chips.map((c) => [...c].join(',')).join('|')}`);
            return chips.map((c) => Float32Array.from([c.reduce((s, v) => s + v, 0), c[0]!, 1]));
          },
          dispose: () => {
            disposed = true;
          },
        },
      };
    },
  };
}

const norm = (v: ArrayLike<number>, from = 0, to = v.length): number => {
  let s = 0;
  for (let i = from; i < to; i++) s += v[i]! ** 2;
  return Math.sqrt(s);
};

describe('FusedEmbedder', () => {
  it('concatenates the parts embeddings each scaled to norm sqrt(weight), each part on its own bytes', async () => {
    const log: string[] = [];
    const [a, b] = [fakePart(log, 'a'), fakePart(log, 'b')];
    const fused = await FusedEmbedder.load({ parts: [{ ...a, weight: 0.36 }, { ...b, weight: 0.64 }] });
    expect(fused.dim).toBe(6);
    expect(fused.chipBytes).toBe(5);
    const out = await fused.run([Uint8Array.from([1, 2, 3, 4, 5]), Uint8Array.from([9, 9, 0, 0, 7])]);
    // each part ran once on the whole batch, on its slice of every chip
    expect(log).toEqual(['a:1,2|9,9', 'b:3,4,5|0,0,7']);
    for (const v of out) {
      expect(norm(v)).toBeCloseTo(1, 6);
      expect(norm(v, 0, 3)).toBeCloseTo(0.6, 6);
      expect(norm(v, 3, 6)).toBeCloseTo(0.8, 6);
    }
    // part a of chip 0 is [3, 1, 1] / |.| * 0.6
    const n = Math.hypot(3, 1, 1);
    expect([...out[0]!.slice(0, 3)].map((x) => +x.toFixed(6))).toEqual([3, 1, 1].map((x) => +((x / n) * 0.6).toFixed(6)));
    // the squared distance is the weighted sum of the parts' squared distances (of their unit embeddings)
    const unit = (x: number[]) => x.map((v) => v / Math.hypot(...x));
    const sq = (p: number[], q: number[]) => p.reduce((s, v, i) => s + (v - q[i]!) ** 2, 0);
    const d2 = sq([...out[0]!], [...out[1]!]);
    expect(d2).toBeCloseTo(0.36 * sq(unit([3, 1, 1]), unit([18, 9, 1])) + 0.64 * sq(unit([12, 3, 1]), unit([7, 0, 1])), 6);
    await fused.dispose();
    expect(a.disposed() && b.disposed()).toBe(true);
    await fused.dispose();
    await expect(fused.run([new Uint8Array(5)])).rejects.toThrow(/after dispose/);
  });

  it('refuses a chip of the wrong length, bad weights, and disposes the loaded parts when one fails to load', async () => {
    const log: string[] = [];
    const fused = await FusedEmbedder.load({ parts: [{ ...fakePart(log, 'a'), weight: 0.5 }, { ...fakePart(log, 'b'), weight: 0.5 }] });
    const e = await failure(fused.run([new Uint8Array(4)]));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toBe("chip 0 has 4 bytes, expected 5 (the fused parts' chips back to back)");
    await fused.dispose();
    const w = await failure(FusedEmbedder.load({ parts: [{ ...fakePart(log, 'a'), weight: 0.5 }, { ...fakePart(log, 'b'), weight: 0.6 }] }));
    expect(w.code).toBe('INVALID_CONFIG');
    const a = fakePart(log, 'a');
    const l = await failure(FusedEmbedder.load({ parts: [{ ...a, weight: 0.5 }, { ...fakePart(log, 'b', true), weight: 0.5 }] }));
    expect(l.message).toBe('b failed');
    expect(a.disposed()).toBe(true);
  });

  it('with the real parts it leaks no tensors, keeps rss flat and frees both on dispose', async () => {
    await initRuntime({ backend: 'wasm' });
    const start = tf.memory().numTensors;
    const fused = await FusedEmbedder.load({
      parts: [
        { weight: 0.5, load: async () => ({ embedder: await DlibResNetEmbedder.load({ manifestPath: (await resolveModel('faceapi-recognition')).main }), dim: 128, chipBytes: EMBED_INPUT ** 2 * 3 }) },
        { weight: 0.5, load: async () => ({ embedder: await SFaceEmbedder.load({ modelPath: (await resolveModel('sface-2021dec-int8bq')).main }), dim: 128, chipBytes: SFACE_INPUT ** 2 * 3 }) },
      ],
    });
    const chip = Uint8Array.from({ length: fused.chipBytes }, (_, i) => (i * 2654435761) % 251);
    await fused.run([chip, chip]);
    const tensors = tf.memory().numTensors;
    const rss = process.memoryUsage().rss;
    for (let i = 0; i < 15; i++) await fused.run([chip, chip]);
    expect(tf.memory().numTensors).toBe(tensors);
    expect((process.memoryUsage().rss - rss) / 2 ** 20).toBeLessThan(48);
    await fused.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('in the engine its embedding is the parts own engine embeddings scaled by sqrt(weight), flip averaging included', async () => {
    const common = { backend: 'wasm', detector: { minFaceSize: 20, scoreThreshold: 0.8 } } as const;
    const load = (embedder: string) => FaceEngine.load({ ...common, models: { detector: 'yunet', embedder } });
    const img = await decodeImage(GROUP_PHOTOS[0]!.file);
    const fused = await load('fused-dlib-sface');
    let f;
    try {
      const [parts] = [fused.embedderInfo.parts!];
      expect(fused.embedderInfo).toMatchObject({ name: 'fused-dlib-sface', dim: 256 });
      expect(parts.map((p) => [p.name, p.chipSize, p.alignment ?? 'dlib'])).toEqual([
        ['faceapi-recognition', 150, 'dlib'],
        ['sface-2021dec-int8bq', 112, 'arcface'],
      ]);
      expect(parts[0]!.weight + parts[1]!.weight).toBeCloseTo(1, 12);
      [f] = await fused.run([img]);
    } finally {
      fused.dispose();
    }
    const alone: Float32Array[][] = [];
    for (const name of ['faceapi-recognition', 'sface-2021dec-int8bq']) {
      const e = await load(name);
      try {
        alone.push((await e.run([img]))[0]!.map((x) => x.embedding!));
      } finally {
        e.dispose();
      }
    }
    expect(f!.length).toBeGreaterThan(0);
    const w = fused.embedderInfo.parts!.map((p) => Math.sqrt(p.weight));
    f!.forEach((face, i) => {
      const e = face.embedding!;
      for (let k = 0; k < 128; k++) {
        expect(e[k]!).toBeCloseTo(w[0]! * alone[0]![i]![k]!, 5);
        expect(e[128 + k]!).toBeCloseTo(w[1]! * alone[1]![i]![k]!, 5);
      }
    });
  });
});
