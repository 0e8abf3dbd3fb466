import { topicNames } from '@faceflow/shared';
import { describe, expect, it } from 'vitest';
import { alertsConfig } from './config.js';
import { createStage } from './create-stage.js';

describe('alerts createStage', () => {
  it('takes_every_rule_from_the_config_fields_and_consumes_the_matches_topic', () => {
    const config = alertsConfig.load({ FACEFLOW_ALERT_MIN_FACES: '5', FACEFLOW_ALERT_WATCH: 'ann,bob', FACEFLOW_ALERT_UNKNOWN: 'false', FACEFLOW_ALERT_COOLDOWN: '1m' });
    const topics = topicNames('site1');
    const b = createStage(config, { topics });
    expect(b.input).toBe(topics.matches);
    expect(b.groupId).toBe(config.groupId);
    expect(b.stage.rules).toMatchObject({ minFaces: 5, watch: ['ann', 'bob'], unknown: false, cooldownMs: 60_000, minConfidence: 0, cameras: [] });
    // a sweep of a stage that saw nothing, and a flush, publish nothing
    expect(b.sweep!.run()).toEqual([]);
    expect(b.flush!()).toEqual([]);
  });
});
