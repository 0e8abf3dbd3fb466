import { describe, expect, it } from 'vitest';
import { type Point } from '@faceflow/engine';
import { landmarkPolygon } from '@faceflow/engine/segment';
import { FaceSchema } from '@faceflow/shared';
import { faceMaskPolygon } from './face-mask.js';

/** A plausible 68-point face: jaw on a half ellipse, the rest inside it. */
function face68(cx: number, cy: number, r: number): Point[] {
  const jaw = Array.from({ length: 17 }, (_, i) => {
    const t = Math.PI * (i / 16);
    return { x: cx - r * Math.cos(t), y: cy + r * 0.2 + r * Math.sin(t) };
  });
  const inner = Array.from({ length: 51 }, (_, i) => ({ x: cx - r * 0.6 + (i % 10) * r * 0.13, y: cy - r * 0.4 + Math.floor(i / 10) * r * 0.2 }));
  return [...jaw, ...inner];
}

describe('faceMaskPolygon', () => {
  it('is the landmarks outline in frame pixels (jaw line, then the raised brows), rounded to 0.1 px and valid for the schema', () => {
    const lm = face68(200.04, 150.06, 40);
    const m = faceMaskPolygon(lm, 'landmarks')!;
    expect(m.method).toBe('landmarks');
    expect(m.polygon).toHaveLength(27);
    const expected = landmarkPolygon(lm);
    m.polygon.forEach(([x, y], i) => {
      expect(x).toBeCloseTo(expected[i]!.x, 1);
      expect(y).toBeCloseTo(expected[i]!.y, 1);
      expect(Math.round(x * 10) / 10).toBe(x);
    });
    // the forehead is raised above the brows: the outline's top is above every landmark
    expect(Math.min(...m.polygon.map((p) => p[1]))).toBeLessThan(Math.min(...lm.map((p) => p.y)));
    expect(() => FaceSchema.validate({ frameId: 'f', cameraId: 'c', captureTs: Date.UTC(2026, 0, 1), faceIndex: 0, box: { x: 1, y: 1, width: 2, height: 2 }, landmarks: [], score: 1, quality: 1, embedding: [1], model: 'm', mask: m })).not.toThrow();
  });

  it('gives nothing for method none, a landmark set that is not the 68 points, or a failed fit', () => {
    const lm = face68(100, 100, 30);
    expect(faceMaskPolygon(lm, 'none')).toBeUndefined();
    expect(faceMaskPolygon(lm.slice(0, 5), 'landmarks')).toBeUndefined();
    expect(faceMaskPolygon(lm.map((p, i) => (i === 3 ? { x: NaN, y: p.y } : p)), 'landmarks')).toBeUndefined();
  });
});
