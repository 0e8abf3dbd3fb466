import { describe, expect, it } from 'vitest';
import { dlqTopic, topicNames, TOPICS } from './topics.js';

describe('topics', () => {
  it('has the pipeline topics', () => {
    expect(TOPICS).toEqual({
      frames: 'frames',
      framesDlq: 'frames.dlq',
      faces: 'faces',
      matches: 'matches',
      identityEvents: 'identity-events',
      galleryChanges: 'gallery-changes',
      audit: 'faceflow.audit',
    });
  });

  it('applies a prefix, with or without the trailing dot', () => {
    expect(topicNames('site1').faces).toBe('site1.faces');
    expect(topicNames('site1.').framesDlq).toBe('site1.frames.dlq');
  });

  it('rejects illegal names', () => {
    expect(() => topicNames('has space')).toThrow(/not a legal topic name/);
    expect(() => topicNames('x'.repeat(250))).toThrow();
  });

  it('derives dead-letter topics', () => {
    expect(dlqTopic('faces')).toBe('faces.dlq');
    expect(dlqTopic(TOPICS.frames)).toBe(TOPICS.framesDlq);
  });
});
