import { describe, expect, it } from 'vitest';
import { l2Distance } from '../match/decide.js';
import { distanceAtFar } from './far.js';
import { allPairsImpostors } from './lfw.js';

function unit(seed: number, dim = 8): Float32Array {
  // a small deterministic generator (the test must not depend on Math.random)
  let s = seed * 9301 + 49297;
  const v = Float32Array.from({ length: dim }, () => {
    s = (s * 9301 + 49297) % 233280;
    return s / 233280 - 0.5;
  });
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

describe('allPairsImpostors (eval lfw --all-pairs)', () => {
  it('counts only pairs of two different people and reads each FAR off the sorted impostor distances', () => {
    const embeddings = new Map<string, Float32Array | null>();
    // 60 people x 2 images (+ one image that failed: skipped); 120 images: 7140 pairs, 60 of them genuine
    for (let p = 0; p < 60; p++) for (let i = 0; i < 2; i++) embeddings.set(`/lfw/P${p}/P${p}_000${i + 1}.jpg`, unit(p * 7 + i * 1000 + 1));
    embeddings.set('/lfw/Nobody/Nobody_0001.jpg', null);
    const r = allPairsImpostors(embeddings);
    expect(r.images).toBe(120);
    expect(r.impostorPairs).toBe(7080);
    const files = [...embeddings].filter((e): e is [string, Float32Array] => e[1] !== null);
    const impostors: number[] = [];
    for (let i = 0; i < files.length; i++) {
      for (let j = i + 1; j < files.length; j++) {
        if (files[i]![0].split('/')[2] !== files[j]![0].split('/')[2]) impostors.push(l2Distance(files[i]![1], files[j]![1]));
      }
    }
    impostors.sort((a, b) => a - b);
    // FAR 1e-3 of 7080 pairs: 7 impostors may fall under the threshold, so it is the 8th smallest distance
    // (rounded down to 1e-4)
    expect(r.distanceAtFar['1e-3']).toBe(Math.floor(impostors[7]! * 1e4) / 1e4);
    expect(impostors.filter((d) => d < r.distanceAtFar['1e-3']!).length / r.impostorPairs).toBeLessThanOrEqual(1e-3);
    // 7080 pairs cannot resolve 1e-4
    expect(r.distanceAtFar['1e-4']).toBeNull();
  });

  it('all_pairs_and_the_head_calibration_read_one_far_rule: the same threshold as distanceAtFar on every impostor pair', () => {
    const embeddings = new Map<string, Float32Array | null>();
    // 50 people x 3 images: 11 175 pairs, 150 of them genuine; 11 025 impostor pairs resolve 1e-3 and 1e-4
    for (let p = 0; p < 50; p++) for (let i = 0; i < 3; i++) embeddings.set(`/lfw/P${p}/P${p}_000${i + 1}.jpg`, unit(p * 13 + i * 977 + 5));
    const files = [...embeddings] as Array<[string, Float32Array]>;
    const impostors: number[] = [];
    for (let i = 0; i < files.length; i++) {
      for (let j = i + 1; j < files.length; j++) if (files[i]![0].split('/')[2] !== files[j]![0].split('/')[2]) impostors.push(l2Distance(files[i]![1], files[j]![1]));
    }
    const r = allPairsImpostors(embeddings);
    expect(r.impostorPairs).toBe(impostors.length);
    for (const far of [1e-3, 1e-4]) {
      const calibrated = distanceAtFar(impostors, far);
      expect(calibrated.resolved).toBe(true);
      expect(r.distanceAtFar[far.toExponential(0)]).toBe(Math.floor(calibrated.distance * 1e4) / 1e4);
    }
    expect(r.distanceAtFar['1e-5']).toBeNull();
  });
});
