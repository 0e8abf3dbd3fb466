/** The JSON views of faces (issue 13: out of the CLI): rounded, and an embedding only when asked for. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import type { DetectedFace } from './engine.js';
import { detectedFaceJson, identifiedFaceJson, writeDetectionOverlay } from './faces-json.js';

const face = { box: { x: 1.04, y: 2, width: 10, height: 12 }, score: 0.987654, keypoints: [{ x: 3.33, y: 4 }], landmarks: [{ x: 5.55, y: 6.01 }], embedding: new Float32Array([0.1234567, 0.5]) } as unknown as DetectedFace;

describe('face JSON', () => {
  it('a_face_json_holds_no_embedding_unless_asked', () => {
    expect(detectedFaceJson(face)).toEqual({ box: { x: 1, y: 2, width: 10, height: 12 }, score: 0.9877, keypoints: [[3.3, 4]], landmarks: [[5.6, 6]] });
    expect((detectedFaceJson(face, true).embedding as number[])[0]).toBe(0.123457);
  });

  it('an_identified_face_json_rounds_its_distances', () => {
    expect(identifiedFaceJson(face, { identity: null, distance: 0.612345, nearest: 'ada', secondDistance: null, reason: 'above-threshold' } as never)).toEqual({
      identity: null, distance: 0.6123, nearest: 'ada', secondDistance: null, reason: 'above-threshold', box: { x: 1, y: 2, width: 10, height: 12 },
    });
  });

  it('the_detection_overlay_is_written_at_the_image_size', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ff-facejson-'));
    try {
      const out = path.join(dir, 'd.png');
      await writeDetectionOverlay({ width: 20, height: 16, data: new Uint8Array(20 * 16 * 3) }, [face], out);
      expect(await sharp(out).metadata()).toMatchObject({ width: 20, height: 16 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
