/** For tests: the FaceflowError a promise rejects with (a rejection of any other kind, or none, fails). */
import { FaceflowError } from '@faceflow/shared';

export async function failure(p: Promise<unknown>): Promise<FaceflowError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof FaceflowError) return e;
    throw new Error(`expected a FaceflowError, got ${String(e)}`);
  }
  throw new Error('expected a rejection');
}
