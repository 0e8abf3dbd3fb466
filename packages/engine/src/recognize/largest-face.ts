/** Which face of an image is "the" face when a command takes one (enroll, verify, identify, the enrolment API). */
import type { Box } from '@faceflow/shared';

/** The face with the largest box (the first of equals), or undefined when there is none. */
export function largestFace<T extends { box: Box }>(faces: readonly T[]): T | undefined {
  if (faces.length === 0) return undefined;
  return faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
}
