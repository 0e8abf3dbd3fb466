/**
 * `node bench/dist/redact-check.js --video <file> --gallery <file> [--every N] [--threshold T] [--detector D]`:
 * checks a redacted video (issue 4's "done when"): in every N-th frame, run the detector and identify each
 * face it finds against the gallery. A face that is found and not identified as someone enrolled is a
 * leak. Run it on the input too, to see how many enrolled and non-enrolled faces there were to begin with.
 * `--detector` (default the engine's, YuNet) checks with another detector too: a face any detector finds is a
 * leak. Prints one JSON line. A check, not a test: it asserts nothing.
 */
import { parseArgs } from 'node:util';
import { FaceEngine, Gallery, identify } from '@faceflow/engine';
import { calibrationFor } from '@faceflow/engine/match';
import { decodeRgbFrames, probeVideo } from '@faceflow/shared/media';

const { values } = parseArgs({
  options: {
    video: { type: 'string' },
    gallery: { type: 'string' },
    every: { type: 'string', default: '1' },
    threshold: { type: 'string' },
    'max-frames': { type: 'string' },
    detector: { type: 'string' },
  },
});
if (!values.video || !values.gallery) {
  process.stderr.write('usage: redact-check --video <file> --gallery <file> [--every N] [--threshold T] [--max-frames N] [--detector D]\n');
  process.exit(2);
}
const every = Math.max(1, Number(values.every));
const maxFrames = values['max-frames'] ? Number(values['max-frames']) : Infinity;
const gallery = await Gallery.load(values.gallery);
const threshold = values.threshold ? Number(values.threshold) : calibrationFor(gallery.model)!.distanceAtFar1e3;
const engine = await FaceEngine.load({ backend: process.env.FACEFLOW_BACKEND ?? 'wasm', ...(values.detector ? { models: { detector: values.detector } } : {}) });
const info = await probeVideo(values.video);
let frame = 0;
let checked = 0;
let faces = 0;
let nonEnrolled = 0;
const framesWithNonEnrolled: number[] = [];
const enrolled = new Map<string, number>();
for await (const image of decodeRgbFrames(values.video, info)) {
  if (frame >= maxFrames) break;
  if (frame % every === 0) {
    checked++;
    const [found] = await engine.run([image]);
    let here = 0;
    for (const f of found!) {
      faces++;
      const r = identify(f.embedding!, gallery, { threshold });
      if (r.identity) enrolled.set(r.identity, (enrolled.get(r.identity) ?? 0) + 1);
      else here++;
    }
    nonEnrolled += here;
    if (here > 0) framesWithNonEnrolled.push(frame);
  }
  frame++;
}
engine.dispose();
process.stdout.write(
  `${JSON.stringify({ video: values.video, detector: engine.models.detector.name, frames: frame, checked, every, threshold, faces, nonEnrolled, framesWithNonEnrolled, enrolled: Object.fromEntries(enrolled) })}\n`,
);
