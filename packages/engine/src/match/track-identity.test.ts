/**
 * The one track-identity rule (issue 13): the matcher's tracker and the redaction tracker name a track by the
 * same rule, from the L2-normalised mean of its faces' embeddings.
 */
import { describe, expect, it } from 'vitest';
import { Gallery } from './gallery.js';
import { rasterizePolygon } from '../segment/mask.js';
import { RedactionTracker } from '../redact/redact.js';
import { decideTrackIdentity, embeddingSum, trackMean } from './track-identity.js';

const unit = (v: number[]): Float32Array => {
  const n = Math.hypot(...v);
  return Float32Array.from(v.map((x) => x / n));
};

function gallery(): Gallery {
  const g = new Gallery('m', 3);
  g.add('alice', [unit([1, 0, 0])]);
  g.add('bob', [unit([0, 1, 0])]);
  return g;
}

const rule = { threshold: 0.5, margin: 0.03 };

describe('track identity', () => {
  it('a_track_is_named_from_the_normalised_mean_of_its_faces_which_single_frames_may_not_be', () => {
    const g = gallery();
    // single frames scatter around alice, each too far to be named; their mean is close
    const faces = [unit([1, 0.6, 0]), unit([1, -0.6, 0]), unit([1, 0, 0.6]), unit([1, 0, -0.6])];
    for (const f of faces) expect(decideTrackIdentity(f, g, rule).identity).toBeNull();
    const mean = trackMean(embeddingSum(faces))!;
    expect(decideTrackIdentity(mean, g, rule)).toMatchObject({ identity: 'alice', reason: 'match' });
    // the redaction tracker, given the gallery and rule, names the same track by the same rule
    const square = rasterizePolygon([{ x: 10, y: 10 }, { x: 30, y: 10 }, { x: 30, y: 30 }, { x: 10, y: 30 }], 64, 64);
    const t = new RedactionTracker({ match: { gallery: g, ...rule } });
    let track = 0;
    for (const e of faces) track = t.observe([{ box: { x: 10, y: 10, width: 20, height: 20 }, mask: square, identity: null, embedding: e }]).faces[0]!.track;
    expect(t.identityOf(track)).toBe('alice');
  });

  it('a_mean_whose_faces_mostly_disagree_names_no_one_and_an_empty_gallery_is_an_answer', () => {
    const g = gallery();
    const support = [unit([1, 0.05, 0]), unit([0, 1, 0.02]), unit([0.05, 1, 0])];
    // a mean pulled near alice by one face, while two of three faces are bob's
    expect(decideTrackIdentity(unit([1, 0.1, 0]), g, rule, support)).toMatchObject({ identity: null, reason: 'ambiguous' });
    expect(decideTrackIdentity(unit([1, 0, 0]), new Gallery('m', 3), rule)).toEqual({ identity: null, distance: null, confidence: 1, reason: 'empty-gallery' });
    expect(decideTrackIdentity(unit([1, 0, 0]), undefined, rule).reason).toBe('empty-gallery');
  });

  it('faces_that_cancel_out_have_no_mean', () => {
    expect(trackMean(embeddingSum([unit([1, 0, 0]), unit([-1, 0, 0])]))).toBeNull();
    expect(Array.from(trackMean(Float32Array.from([3, 4, 0]))!)).toEqual([Math.fround(0.6), Math.fround(0.8), 0]);
  });
});
