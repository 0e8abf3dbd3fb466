/**
 * Small face crops: the `cropRef` of a Face (never the crop itself on the bus). A crop store keeps a JPEG of
 * each face somewhere a person can look at it later; the reference goes downstream (thumbnails of identity
 * events). The store (`CropStore`, `DirCropStore`: files under a folder, file:// references) is in
 * @faceflow/shared; alerts deletes the crops that no event points at.
 *
 * A crop is the face's box grown by 30%, so in a crowd it also catches part of a neighbour's face: the other
 * faces of the frame are hidden in it along their outlines (`hide`), unless the camera is exempt from
 * redaction (FACEFLOW_REDACT_EXEMPT_CAMERAS). The embedder cannot know yet who anyone is, so it hides every
 * neighbour, enrolled or not: when in doubt, hide. Whether the face itself may be shown is decided downstream,
 * once its track is named (alerts: an unknown track's thumbnail is withheld).
 */
import { redactImage, type Box, type FaceMask, type Point, type RgbImage } from '@faceflow/engine';
import { encodeJpeg, resizeImage } from '@faceflow/engine/image';
import { faceRedactionMask } from '@faceflow/engine/redact';

/** A face to hide in a crop: its box and 68 landmarks in frame pixels (as the engine gives them). */
export interface HiddenFace {
  box: Box;
  landmarks: Point[];
}

/**
 * Cuts the box (grown by `scale`, clipped to the image) and scales it to `side` px, as JPEG. The faces in
 * `hide` (the frame's other faces) are blurred away along their outlines where they reach into the crop.
 */
export async function faceCropJpeg(image: RgbImage, box: Box, side = 96, scale = 1.3, hide: readonly HiddenFace[] = []): Promise<Buffer> {
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const half = (Math.max(box.width, box.height) * scale) / 2;
  const x0 = Math.max(0, Math.floor(cx - half));
  const y0 = Math.max(0, Math.floor(cy - half));
  const x1 = Math.min(image.width, Math.ceil(cx + half));
  const y1 = Math.min(image.height, Math.ceil(cy + half));
  const w = Math.max(1, x1 - x0);
  const h = Math.max(1, y1 - y0);
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const src = ((y0 + y) * image.width + x0) * 3;
    data.set(image.data.subarray(src, src + w * 3), y * w * 3);
  }
  let crop: RgbImage = { data, width: w, height: h };
  const masks: FaceMask[] = [];
  for (const o of hide) {
    const b = o.box;
    // a neighbour whose box (grown as redaction grows it) misses the crop costs nothing
    const pad = 0.2 * Math.max(b.width, b.height);
    if (b.x - pad > x1 || b.x + b.width + pad < x0 || b.y - pad > y1 || b.y + b.height + pad < y0) continue;
    const shifted = { box: { ...b, x: b.x - x0, y: b.y - y0 }, landmarks: o.landmarks.map((p) => ({ x: p.x - x0, y: p.y - y0 })) };
    masks.push(faceRedactionMask({ width: w, height: h }, shifted));
  }
  if (masks.length > 0) crop = redactImage(crop, masks, { style: 'blur' });
  const k = side / Math.max(w, h);
  const small = await resizeImage(crop, Math.max(1, Math.round(w * k)), Math.max(1, Math.round(h * k)), { kernel: 'linear' });
  return encodeJpeg(small, 80);
}
