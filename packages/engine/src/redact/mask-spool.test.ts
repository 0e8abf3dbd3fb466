import { describe, expect, it } from 'vitest';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { rasterizePolygon } from '../segment/mask.js';
import { MaskSpool, type SpoolEntry } from './mask-spool.js';

describe('MaskSpool', () => {
  it('gives back every frame, in order, bit for bit, and deletes its file', async () => {
    const W = 97, H = 61;
    const tri = (x: number) => rasterizePolygon([{ x, y: 3 }, { x: x + 13, y: 40 }, { x: x - 9, y: 33 }], W, H);
    const spool = await MaskSpool.create(W, H);
    const written: SpoolEntry[][] = [];
    for (let f = 0; f < 5; f++) {
      const entries: SpoolEntry[] = [];
      // frame 2 has no face: an empty frame must stay one frame
      for (let k = 0; f !== 2 && k <= f % 3; k++) {
        entries.push({ track: 10 * f + k, kind: k === 1 ? 'held' : 'face', box: { x: f + 0.5, y: k, width: 12.25, height: 20 }, mask: tri(20 + 15 * k + f) });
      }
      written.push(entries);
      await spool.append(entries);
    }
    const dir = path.dirname((spool as unknown as { file: string }).file);
    expect((await stat(dir)).isDirectory()).toBe(true);
    const read: SpoolEntry[][] = [];
    for await (const f of spool.frames()) read.push(f);
    expect(read).toHaveLength(5);
    expect(read[2]).toEqual([]);
    for (let f = 0; f < 5; f++) {
      expect(read[f]!.map((e) => [e.track, e.kind, e.box])).toEqual(written[f]!.map((e) => [e.track, e.kind, e.box]));
      for (let k = 0; k < read[f]!.length; k++) {
        const a = read[f]![k]!.mask, b = written[f]![k]!.mask;
        expect([a.width, a.height, a.x, a.y, a.w, a.h]).toEqual([b.width, b.height, b.x, b.y, b.w, b.h]);
        expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
      }
    }
    await spool.dispose();
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
  });
});
