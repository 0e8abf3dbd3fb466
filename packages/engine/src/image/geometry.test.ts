import { describe, expect, it } from 'vitest';
import { applyAffine, iou, invertAffine, similarityTransform, warpAffine, weightedNms, squareCropAffine } from './geometry.js';

describe('similarityTransform', () => {
  it('recovers a known rotation, scale and translation exactly', () => {
    const angle = 0.3, scale = 1.7, tx = 12, ty = -5;
    const from = [{ x: 0, y: 0 }, { x: 10, y: 0 }, { x: 3, y: 7 }, { x: -4, y: 2 }];
    const to = from.map((p) => ({
      x: scale * (Math.cos(angle) * p.x - Math.sin(angle) * p.y) + tx,
      y: scale * (Math.sin(angle) * p.x + Math.cos(angle) * p.y) + ty,
    }));
    const m = similarityTransform(from, to);
    from.forEach((p, i) => {
      const q = applyAffine(m, p);
      expect(q.x).toBeCloseTo(to[i]!.x, 9);
      expect(q.y).toBeCloseTo(to[i]!.y, 9);
    });
    const back = applyAffine(invertAffine(m), to[2]!);
    expect(back.x).toBeCloseTo(3, 9);
    expect(back.y).toBeCloseTo(7, 9);
  });
});

describe('iou and weighted NMS', () => {
  it('computes IoU of overlapping and disjoint boxes', () => {
    expect(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 5, y: 0, width: 10, height: 10 })).toBeCloseTo(50 / 150);
    expect(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 20, y: 20, width: 5, height: 5 })).toBe(0);
  });
  it('merges overlapping candidates by score and keeps separate faces apart', () => {
    const kp = [{ x: 0, y: 0 }];
    const out = weightedNms(
      [
        { box: { x: 0, y: 0, width: 10, height: 10 }, score: 0.9, keypoints: kp },
        { box: { x: 1, y: 0, width: 10, height: 10 }, score: 0.6, keypoints: kp },
        { box: { x: 50, y: 50, width: 10, height: 10 }, score: 0.7, keypoints: kp },
      ],
      0.3,
    );
    expect(out).toHaveLength(2);
    expect(out[0]!.box.x).toBeCloseTo((0 * 0.9 + 1 * 0.6) / 1.5);
    expect(out[1]!.box.x).toBe(50);
  });
});

describe('warpAffine', () => {
  it('copies pixels exactly under an identity crop', () => {
    const src = { width: 4, height: 4, data: Uint8Array.from({ length: 48 }, (_, i) => i * 5) };
    const out = warpAffine(src, squareCropAffine({ x: 0, y: 0, width: 4, height: 4 }, 1, 4), 4, 4);
    expect(Array.from(out)).toEqual(Array.from(src.data));
  });
});

describe('ArcFace 5-point alignment (issue 11)', () => {
  it('arcface_chip_puts_the_eyes_nose_and_mouth_corners_of_68_landmarks_on_the_template', async () => {
    const { arcFaceChipAffine, ARCFACE_TEMPLATE } = await import('../recognize/align.js');
    // 68 landmarks of a face 2x the template, rotated 10 degrees and moved: eye rings around the eye centres
    const a = (10 * Math.PI) / 180;
    const place = (p: { x: number; y: number }) => ({ x: 300 + 2 * (p.x * Math.cos(a) - p.y * Math.sin(a)), y: 100 + 2 * (p.x * Math.sin(a) + p.y * Math.cos(a)) });
    const l = Array.from({ length: 68 }, () => ({ x: 0, y: 0 }));
    const [re, le, nose, ml, mr] = ARCFACE_TEMPLATE.map(place);
    for (let i = 0; i < 6; i++) {
      const t = (i / 6) * 2 * Math.PI;
      l[36 + i] = { x: re!.x + 3 * Math.cos(t), y: re!.y + 3 * Math.sin(t) };
      l[42 + i] = { x: le!.x + 3 * Math.cos(t), y: le!.y + 3 * Math.sin(t) };
    }
    l[30] = nose!;
    l[48] = ml!;
    l[54] = mr!;
    const m = arcFaceChipAffine(l);
    ARCFACE_TEMPLATE.forEach((p, i) => {
      const q = applyAffine(m, p);
      const want = place(p);
      expect(q.x, `point ${i}`).toBeCloseTo(want.x, 6);
      expect(q.y, `point ${i}`).toBeCloseTo(want.y, 6);
    });
  });
});
