/**
 * The quality floor under which a face is neither enrolled nor identified (recognize/quality.ts scores a
 * face; the floor is a decision, so it sits with the other decision policies in match/, where the matcher,
 * which runs no model, reads it too: issue 13). How 0.15 was chosen: recognize/quality.ts.
 */
export const DEFAULT_QUALITY_FLOOR = 0.15;
