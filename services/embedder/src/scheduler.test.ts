import { describe, expect, it } from 'vitest';
import { DetectionScheduler } from './scheduler.js';

const box = (x: number, y: number, side = 50) => ({ x, y, width: side, height: side });

describe('DetectionScheduler', () => {
  it('with interval 0, every frame is a full detection', () => {
    const s = new DetectionScheduler(0);
    for (let t = 0; t < 1000; t += 200) expect(s.wantsFull('cam', t)).toBe(true);
  });

  it('a camera it has not seen gets a full detection, then regions until the interval has passed', () => {
    const s = new DetectionScheduler(1000);
    expect(s.wantsFull('cam', 0)).toBe(true);
    s.observe('cam', 0, [{ box: box(10, 10), embedded: true }], true);
    s.fullDone('cam');
    expect(s.wantsFull('cam', 200)).toBe(false);
    expect(s.regions('cam', 200)).toEqual([box(10, 10)]);
    s.observe('cam', 200, [{ box: box(20, 10), embedded: true }], false);
    expect(s.wantsFull('cam', 400)).toBe(false);
    expect(s.regions('cam', 400)).toEqual([box(20, 10)]);
    expect(s.wantsFull('cam', 1000)).toBe(true);
    // another camera has its own schedule
    expect(s.wantsFull('other', 400)).toBe(true);
    expect(s.regions('other', 400)).toEqual([]);
  });

  it('a full detection is reserved when decided: the frames decided before its result are not full ones too', () => {
    const s = new DetectionScheduler(1000);
    expect(s.wantsFull('cam', 0)).toBe(true);
    expect(s.wantsFull('cam', 200)).toBe(false);
    expect(s.regions('cam', 200)).toEqual([]);
  });

  it('a_face_lost_for_a_frame_is_looked_for_until_the_next_full_detection', () => {
    const s = new DetectionScheduler(1000);
    s.wantsFull('cam', 0);
    s.observe('cam', 0, [{ box: box(10, 10), embedded: true }, { box: box(500, 300), embedded: true }], true);
    s.fullDone('cam');
    s.observe('cam', 200, [{ box: box(12, 10), embedded: true }], false); // the face at 500,300 turned away
    expect(s.regions('cam', 400)).toEqual([box(12, 10), box(500, 300)]);
  });

  it('a_frame_never_looks_where_a_later_frame_found_faces (a backlog finishing out of order)', () => {
    const s = new DetectionScheduler(1000);
    s.wantsFull('cam', 0);
    s.observe('cam', 0, [{ box: box(10, 10), embedded: true }], true);
    s.fullDone('cam');
    s.wantsFull('cam', 1000);
    s.observe('cam', 1000, [{ box: box(400, 10), embedded: true }], true);
    s.fullDone('cam'); // the later full detection finished first
    expect(s.regions('cam', 200)).toEqual([box(10, 10)]);
    expect(s.regions('cam', 1200)).toEqual([box(400, 10)]);
  });

  it('a_face_embedded_a_moment_ago_is_followed_not_embedded_again_until_the_reembed_interval', () => {
    const s = new DetectionScheduler(1000);
    s.wantsFull('cam', 0);
    s.observe('cam', 0, [{ box: box(10, 10), embedded: true }, { box: box(300, 10), embedded: true }], true);
    s.fullDone('cam');
    expect(s.recentlyEmbedded('cam', 200, 400)).toEqual([box(10, 10), box(300, 10)]);
    expect(s.recentlyEmbedded('cam', 200, 0)).toEqual([]);
    // at 200 both are followed (moved a little): they keep their embedding time, 0
    s.observe('cam', 200, [{ box: box(14, 10), embedded: false }, { box: box(304, 10), embedded: false }], false);
    expect(s.recentlyEmbedded('cam', 400, 400)).toEqual([]); // 400 ms since: due again
    // at 400 one is embedded again, the other followed; at 600 only the second is due
    s.observe('cam', 400, [{ box: box(18, 10), embedded: true }, { box: box(308, 10), embedded: false }], false);
    expect(s.recentlyEmbedded('cam', 600, 400)).toEqual([box(18, 10)]);
  });

  it('a_cameras_full_detections_never_queue_up: the next waits until the previous one finished', () => {
    const s = new DetectionScheduler(1000);
    expect(s.wantsFull('cam', 0)).toBe(true);
    expect(s.wantsFull('cam', 1000)).toBe(false); // the one at 0 is still running: put off
    expect(s.wantsFull('cam', 1200)).toBe(false);
    expect(s.deferred).toBe(2);
    s.observe('cam', 0, [], true);
    s.fullDone('cam');
    expect(s.wantsFull('cam', 1400)).toBe(true);
  });

  it('a replayed (much older) frame gets a full detection', () => {
    const s = new DetectionScheduler(1000);
    s.wantsFull('cam', 10_000);
    s.observe('cam', 10_000, [{ box: box(10, 10), embedded: true }], true);
    s.fullDone('cam');
    expect(s.wantsFull('cam', 5000)).toBe(true);
  });

  it('remembers at most maxCameras cameras, forgetting the least recently seen', () => {
    const s = new DetectionScheduler(1000, 2);
    s.wantsFull('a', 0);
    s.wantsFull('b', 0);
    s.observe('a', 100, [], false);
    s.wantsFull('c', 0);
    expect(s.size).toBe(2);
    expect(s.wantsFull('b', 200)).toBe(true); // forgotten
    expect(s.wantsFull('a', 200)).toBe(true); // evicted by b's return
  });
});
