import { describe, expect, it } from 'vitest';
import { largestFace } from './largest-face.js';

describe('largestFace', () => {
  it('the_face_with_the_largest_box_is_the_face_and_none_is_undefined', () => {
    const a = { box: { x: 0, y: 0, width: 10, height: 10 }, id: 'a' };
    const b = { box: { x: 50, y: 0, width: 20, height: 20 }, id: 'b' };
    const c = { box: { x: 90, y: 0, width: 20, height: 20 }, id: 'c' };
    expect(largestFace([a, b, c])?.id).toBe('b');
    expect(largestFace([])).toBeUndefined();
  });
});
