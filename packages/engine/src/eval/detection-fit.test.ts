/** Detection evaluation (issue 11): box corrections, the operating point at a false-positive budget, dlib XML. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  correctBox,
  fitBoxCorrection,
  IDENTITY_CORRECTION,
  operatingPoint,
  parseGroundTruth,
  readBoxCorrections,
  writeBoxCorrection,
  type DetectionRun,
} from './detection.js';

/** Ground truth 1.5x wider and 1.2x taller than the detector's boxes, about the same centre. */
function generousRun(): DetectionRun {
  const images: DetectionRun['images'] = [];
  for (let i = 0; i < 10; i++) {
    const det = { x: 100 + i, y: 50, width: 40, height: 50 };
    const truth = [correctBox(det, { widthScale: 1.5, heightScale: 1.2 })];
    // one face per image, scored high; a false positive elsewhere in half of the images, scored low
    const detections = [{ box: det, score: 0.9 - i * 0.01 }];
    if (i % 2 === 0) detections.push({ box: { x: 400, y: 400, width: 30, height: 30 }, score: 0.5 });
    images.push({ image: `${i}.jpg`, detections, truth });
  }
  return { images };
}

describe('detection evaluation', () => {
  it('a box correction scales width and height about the centre', () => {
    const c = correctBox({ x: 10, y: 20, width: 40, height: 50 }, { widthScale: 1.5, heightScale: 1.2 });
    expect(c).toEqual({ x: 0, y: 15, width: 60, height: 60 });
    expect(c.x + c.width / 2).toBe(30);
    expect(c.y + c.height / 2).toBe(45);
  });

  it('boxes_drawn_smaller_than_the_ground_truth_are_found_once_the_fitted_correction_is_applied', () => {
    const run = generousRun();
    // raw boxes: IoU 40*50 / (60*60) = 0.56 ... just over 0.5; at IoU 0.6 none matches
    expect(operatingPoint(run, IDENTITY_CORRECTION, 0.3, 0.6).recall).toBe(0);
    const fit = fitBoxCorrection(run, 0.3, 0.6);
    expect(fit.point.recall).toBe(1);
    expect(fit.widthScale).toBeGreaterThan(1.3);
    expect(fit.widthScale).toBeLessThan(1.7);
    expect(fit.heightScale).toBeGreaterThan(1.05);
    expect(fit.heightScale).toBeLessThan(1.35);
  });

  it('the operating point is the lowest threshold within the false-positive budget', () => {
    const run = generousRun();
    const c = { widthScale: 1.5, heightScale: 1.2 };
    // all 10 faces score above 0.5; the 5 false positives score 0.5: 0.5 FP/image if taken
    const tight = operatingPoint(run, c, 0.3);
    expect(tight).toMatchObject({ recall: 1, falsePositives: 0, threshold: 0.81 });
    expect(tight.meanIou).toBeCloseTo(1, 9);
    const loose = operatingPoint(run, c, 0.5);
    expect(loose).toMatchObject({ recall: 1, falsePositives: 5, threshold: 0.5, falsePositivesPerImage: 0.5 });
  });

  it('dlib imglab XML gives one box per <box>, ignored boxes left out', () => {
    const gt = parseGroundTruth(
      "<?xml version='1.0'?>\n<dataset><images>\n<image file='a.jpg'>\n<box top='10' left='20' width='30' height='40'/>\n<box top='1' left='2' width='3' height='4' ignore='1'/>\n</image>\n<image file='b.jpg'/>\n</images></dataset>",
      'x.xml',
    );
    expect(gt.get('a.jpg')).toEqual([{ x: 20, y: 10, width: 30, height: 40 }]);
    expect(gt.get('b.jpg')).toEqual([]);
    expect(parseGroundTruth('a.jpg 1 2 11 22\n').get('a.jpg')).toEqual([{ x: 1, y: 2, width: 10, height: 20 }]);
  });

  it('a stored correction is kept per detector and read back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'faceflow-bc-'));
    try {
      const file = join(dir, 'bc.json');
      expect((await readBoxCorrections(file)).detectors).toEqual({});
      const rec = { widthScale: 1.5, heightScale: 1.2, images: 'i', boxes: 'b', maxFpPerImage: 0.3, iou: 0.5, rawRecall: 0.6, recall: 0.95, date: '2026-12-02' };
      await writeBoxCorrection('yunet-2023mar', rec, file);
      await writeBoxCorrection('facemesh-detection-full', { ...rec, widthScale: 1.1 }, file);
      const doc = await readBoxCorrections(file);
      expect(Object.keys(doc.detectors)).toEqual(['facemesh-detection-full', 'yunet-2023mar']);
      expect(doc.detectors['yunet-2023mar']).toEqual(rec);
      expect(JSON.parse(await readFile(file, 'utf8')).note).toMatch(/--fit-boxes/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
