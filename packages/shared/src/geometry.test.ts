import { describe, expect, it } from 'vitest';
import { iou, l2, unitVector } from './geometry.js';

describe('geometry primitives', () => {
  it('iou_is_overlap_over_union_and_zero_for_disjoint_or_empty_boxes', () => {
    expect(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 5, y: 0, width: 10, height: 10 })).toBeCloseTo(50 / 150);
    expect(iou({ x: 0, y: 0, width: 10, height: 10 }, { x: 20, y: 20, width: 5, height: 5 })).toBe(0);
    expect(iou({ x: 0, y: 0, width: 0, height: 0 }, { x: 0, y: 0, width: 0, height: 0 })).toBe(0);
  });

  it('l2_is_the_euclidean_distance_of_two_embeddings', () => {
    expect(l2(new Float32Array([0, 3]), new Float32Array([4, 0]))).toBe(5);
    expect(l2([1, 2, 3], [1, 2, 3])).toBe(0);
  });

  it('unit_vector_has_norm_one_keeps_direction_and_leaves_a_zero_vector_zero', () => {
    const u = unitVector(new Float32Array([3, 4]));
    expect(Array.from(u)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(u).toBeInstanceOf(Float32Array);
    expect(Array.from(unitVector([0, 0, 0]))).toEqual([0, 0, 0]);
  });
});
