/**
 * Enrolment by image (issue 13: moved here from the matcher, which runs no model): the photo is decoded
 * with the same limits as a frame's, run through this service's engine (so through its projection head,
 * with its detector settings: the embeddings the faces topic carries), and its largest face's embedding is
 * what the gallery API (@faceflow/shared galleryApi) writes to the gallery store.
 */
import { decodeImage, largestFace, type DetectedFace, type RgbImage } from '@faceflow/engine';
import { FaceflowError } from '@faceflow/shared';

/** What enrolment needs of the engine (an EnginePool). */
export interface EnrolmentRunner {
  run(images: RgbImage[]): Promise<DetectedFace[][]>;
}

export const ENROL_MAX_IMAGE_BYTES = 10 * 1024 * 1024;

/** The embedding of the largest face of an encoded image; NO_FACE when there is none. */
export function enrolmentEmbedder(runner: EnrolmentRunner, maxBytes = ENROL_MAX_IMAGE_BYTES): (bytes: Buffer) => Promise<number[]> {
  return async (bytes) => {
    const image = await decodeImage(bytes, { maxBytes });
    const [faces] = await runner.run([image]);
    const face = largestFace(faces ?? []);
    if (!face?.embedding) throw new FaceflowError('NO_FACE', 'no face found in the image');
    return Array.from(face.embedding);
  };
}
