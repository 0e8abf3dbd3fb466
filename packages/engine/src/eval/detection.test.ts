import { describe, expect, it } from 'vitest';
import { matchDetections, parseBoxFile, summarise } from './detection.js';

describe('detection evaluation', () => {
  it('parses box files and matches each ground-truth face at most once', () => {
    const gt = parseBoxFile('a.jpg 0 0 10 10\na.jpg 20 20 30 30\n');
    expect(gt.get('a.jpg')).toHaveLength(2);
    const dets = [
      { box: { x: 0, y: 0, width: 10, height: 10 }, score: 0.9 },
      { box: { x: 1, y: 1, width: 10, height: 10 }, score: 0.8 }, // duplicate of the first face: a false positive
      { box: { x: 100, y: 100, width: 10, height: 10 }, score: 0.7 },
    ];
    expect(matchDetections(dets, gt.get('a.jpg')!)).toEqual({ tp: 1, fp: 2 });
    expect(summarise({ images: 2, groundTruth: 2, truePositives: 1, falsePositives: 2 })).toMatchObject({ recall: 0.5, falsePositivesPerImage: 1 });
  });
  it('names the bad line', () => {
    expect(() => parseBoxFile('a.jpg 1 2 3\n')).toThrow(/line 1/);
  });
});
