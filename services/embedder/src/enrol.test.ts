import { describe, expect, it } from 'vitest';
import { type DetectedFace, type RgbImage } from '@faceflow/engine';
import { encodeJpeg } from '@faceflow/engine/image';
import { enrolmentEmbedder } from './enrol.js';

const image: RgbImage = { data: new Uint8Array(32 * 32 * 3).fill(128), width: 32, height: 32 };
const face = (side: number, v: number): DetectedFace => ({ box: { x: 0, y: 0, width: side, height: side }, score: 0.9, keypoints: [], landmarks: [], embedding: Float32Array.from([v, 0]) });

describe('enrolment by image', () => {
  it('a_photo_enrols_the_embedding_of_its_largest_face', async () => {
    const seen: RgbImage[] = [];
    const embed = enrolmentEmbedder({ run: async (images) => (seen.push(...images), [[face(10, 0.1), face(20, 0.2), face(5, 0.3)]]) });
    expect(await embed(await encodeJpeg(image))).toEqual([Float32Array.from([0.2])[0], 0]);
    expect(seen[0]).toMatchObject({ width: 32, height: 32 });
  });

  it('a_photo_without_a_face_or_not_an_image_is_a_clear_error', async () => {
    const none = enrolmentEmbedder({ run: async () => [[]] });
    await expect(none(await encodeJpeg(image))).rejects.toMatchObject({ code: 'NO_FACE' });
    await expect(none(Buffer.from('not an image'))).rejects.toMatchObject({ code: 'UNSUPPORTED_FORMAT' });
    await expect(enrolmentEmbedder({ run: async () => [[]] }, 10)(await encodeJpeg(image))).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
  });
});
