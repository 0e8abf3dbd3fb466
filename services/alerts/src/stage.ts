/**
 * The alerts stage: Match messages (each with its track's running decision) in, IdentityEvent messages out
 * (keyed by camera id). Per track:
 *   enter  once the track is confirmed (`minFaces`) and the rules want it: the camera is watched, the
 *          identity is watched (or it is unknown and unknown faces are wanted), the confidence is high enough,
 *          and the same identity did not leave the same camera less than `cooldownMs` ago (then the track is
 *          taken as the same visit, and stays silent: one person, one enter);
 *   update when an announced track's identity changes, or its confidence moves by `confidenceStep`;
 *   exit   when an announced track ends: no face for `trackTimeoutMs` of capture time on its camera, or no
 *          face from its camera for `idleMs` of wall time (`sweep`), or at shutdown (`flush`).
 * State changes are staged and kept only after the events were published (`commit`), so a batch that is
 * re-run after a failed publish emits its events again instead of losing them; a redelivered batch that
 * was committed emits nothing new (enter once per track, updates only on change).
 *
 * Thumbnails (privacy): an event points at a stored crop of its track's best face (`thumbnailRef`) only when
 * the event names an enrolled identity. An unknown track's events carry `thumbnailRef: null`: a passer-by's
 * face is not handed downstream, unless the camera is exempt from redaction (`redactExemptCameras`,
 * FACEFLOW_REDACT_EXEMPT_CAMERAS). The crops themselves hide every other face of the frame (embedder).
 *
 * Crop retention (privacy): given the crop store (`crops`), alerts deletes every crop that no event points
 * at, once the events of its batch are out: a face's crop as soon as it is not its track's thumbnail
 * candidate (the matcher's best face only ever changes to a newer face, so a crop that is not the best when it
 * arrives never becomes it), a candidate when a better one replaces it, and the last candidate when its track
 * ends without an event that showed it (an unknown or never-announced track). So the store keeps only the
 * thumbnails that events carry. Not on cameras exempt from redaction, nor with `keepAllCrops`.
 *
 * Erasure (issue 15 item 3, GDPR art. 17): before an event naming an enrolled identity goes out, its
 * thumbnail is recorded in the crop store's erasure index (`recordThumbnail`; where crops are kept whole,
 * every crop of a face named so), so that `forget(identity)`, called when the gallery deletes the identity,
 * finds and deletes them all. `forget` also drops the person's tracks and cooldowns at once (no exit event
 * names them after their erasure), and for a while takes a match that still names them (one the matcher made
 * before it learned of the deletion) as unknown.
 */
import {
  eraseIdentityCrops,
  FirstFailures,
  IdentityEventSchema,
  MatchSchema,
  redactionExempt,
  toFaceflowError,
  type ConsumedMessage,
  type Counter,
  type HandlerContext,
  type Histogram,
  type CropStore,
  type IdentityEvent,
  type UnknownClusterRef,
  type Logger,
  type Match,
  type Metrics,
  type OutgoingMessage,
  type Stage,
  type StageFailure,
  type StageOutput,
  type StageResult,
} from '@faceflow/shared';

export interface AlertRules {
  /** Identities to announce; empty: every identity. */
  watch: string[];
  /** Announce unknown faces too (default true). */
  unknown: boolean;
  /** Cameras to announce; empty: every camera. */
  cameras: string[];
  /** Smallest confidence to announce a named identity (default 0). */
  minConfidence: number;
  /** Faces a track needs before it is announced (default 3). */
  minFaces: number;
  /** No second enter for the same identity on the same camera within this time after an exit (default 30 s). */
  cooldownMs: number;
  /** A change of confidence that is worth an update (default 0.2; identity changes always are). */
  confidenceStep: number;
  /** Consecutive matches a track's identity must keep before it is announced or changed (default 3). */
  minStable: number;
}

export const DEFAULT_RULES: AlertRules = {
  watch: [],
  unknown: true,
  cameras: [],
  minConfidence: 0,
  minFaces: 3,
  cooldownMs: 30_000,
  confidenceStep: 0.2,
  minStable: 3,
};

export interface AlertsStageOptions {
  eventsTopic: string;
  rules?: Partial<AlertRules>;
  /** A track with no face for this long (capture time) has left (default 2000 ms; as the matcher's). */
  trackTimeoutMs?: number;
  /** A track whose camera sent nothing for this long (wall time) has left (default 10 s). */
  idleMs?: number;
  /**
   * Cameras whose unknown tracks' events keep their thumbnail (default none: an unknown person's thumbnail is
   * withheld on every camera; '*' exempts all).
   */
  redactExemptCameras?: readonly string[];
  /**
   * The store the embedder writes crops to (the same folder: FACEFLOW_CROP_DIR). Crops no event points at are
   * deleted from it (see above); without it nothing is deleted.
   */
  crops?: CropStore;
  /** Keep every crop in `crops` (default false: only the ones events point at). */
  keepAllCrops?: boolean;
  metrics?: Metrics;
  logger?: Logger;
  now?: () => number;
}

interface TrackState {
  trackId: string;
  cameraId: string;
  identity: string | null;
  confidence: number;
  startTs: number;
  lastTs: number;
  faces: number;
  /** The announced identity and confidence, when entered. */
  announced?: { identity: string | null; confidence: number };
  /** Taken as the continuation of a visit in cooldown: never announced. */
  suppressed: boolean;
  lastWall: number;
  thumbnailRef: string | null;
  /** Thumbnails that went out in this track's events (never deleted). */
  published: readonly string[];
  /** Consecutive matches with the current identity. */
  stable: number;
  /** The matcher's recurring-stranger cluster of this (unknown) track, the latest it gave (issue 14). */
  unknownCluster?: UnknownClusterRef;
}

/** How long matches naming an erased identity are taken as unknown (the matchers drop it within moments). */
const ERASED_MEMORY_MS = 10 * 60_000;

export class AlertsStage implements Stage {
  readonly name = 'alerts';
  readonly rules: AlertRules;
  private tracks = new Map<string, TrackState>();
  /** `${camera}\0${identity}` -> capture time the identity was last seen leaving (or staying) on the camera. */
  private lastSeen = new Map<string, number>();
  /** Tracks that ended (a late face of one must not start it again), with the thumbnails their events showed. */
  private ended = new Map<string, readonly string[]>();
  /** Crop deletions under way (`settled()` waits for them). */
  private deleting = new Set<Promise<void>>();
  /** Erasure-index records under way (an erasure waits for them, so that none writes the index after it). */
  private recording = new Set<Promise<void>>();
  /** Identities erased (identity -> wall time): matches still naming one are taken as unknown for a while. */
  private erased = new Map<string, number>();
  private readonly trackTimeoutMs: number;
  private readonly idleMs: number;
  private readonly now: () => number;
  /** Failed messages counted once (the dead-letter policy runs them through process() again). */
  private readonly failedOnce = new FirstFailures();
  private readonly m: {
    events?: Counter<'type' | 'known'>;
    suppressed?: Counter<'reason'>;
    withheld?: Counter<never>;
    latency?: Histogram;
    dropped?: Counter<'stage' | 'reason'>;
    cropsDeleted?: Counter<never>;
    cropDeleteFailures?: Counter<never>;
    erasures?: Counter<never>;
  };

  constructor(private readonly o: AlertsStageOptions) {
    this.rules = { ...DEFAULT_RULES, ...o.rules };
    this.trackTimeoutMs = o.trackTimeoutMs ?? 2000;
    this.idleMs = o.idleMs ?? 10_000;
    this.now = o.now ?? Date.now;
    const mt = o.metrics;
    this.m = mt
      ? {
          events: mt.counter({ name: 'alerts_total', help: 'Identity events emitted, by type and whether the identity is known', labelNames: ['type', 'known'] as const }),
          suppressed: mt.counter({ name: 'alerts_suppressed_total', help: 'Tracks not announced, by reason', labelNames: ['reason'] as const }),
          withheld: mt.counter({ name: 'alerts_thumbnails_withheld_total', help: 'Events of unknown tracks whose thumbnail was withheld (privacy redaction)' }),
          latency: mt.histogram({ name: 'capture_to_event_seconds', help: 'From frame capture to identity event (enter/update)' }),
          dropped: mt.counter({ name: 'messages_dropped_total', help: 'Messages a stage could not process (dead-lettered), by reason', labelNames: ['stage', 'reason'] as const }),
          cropsDeleted: mt.counter({ name: 'alerts_crops_deleted_total', help: 'Stored face crops deleted because no identity event points at them (privacy)' }),
          cropDeleteFailures: mt.counter({ name: 'alerts_crop_delete_failures_total', help: 'Face crops that could not be deleted (store error, or a reference the store did not make)' }),
          erasures: mt.counter({ name: 'alerts_erasures_total', help: 'Identities erased after their deletion from the gallery (tracks forgotten, thumbnails deleted)' }),
        }
      : {};
  }

  /** Announced tracks, for tests and debugging. */
  get liveTracks(): number {
    return this.tracks.size;
  }

  private event(type: IdentityEvent['type'], t: TrackState): IdentityEvent {
    // once announced, events speak for what was announced (an unknown stays unknown), never for an
    // identity the track had not settled on: `??` here once turned an announced null into that identity
    const identity = t.announced ? t.announced.identity : t.identity;
    const confidence = t.announced ? t.announced.confidence : t.confidence;
    const thumbnailRef = this.thumbnail(identity, t);
    if (thumbnailRef !== null && !t.published.includes(thumbnailRef)) t.published = [...t.published, thumbnailRef];
    return {
      type,
      trackId: t.trackId,
      identity,
      confidence: Math.min(1, Math.max(0, Math.round(confidence * 1e4) / 1e4)),
      cameraId: t.cameraId,
      startTs: t.startTs,
      endTs: Math.max(t.startTs, t.lastTs),
      thumbnailRef,
      ...(identity === null && t.unknownCluster ? { unknownCluster: t.unknownCluster } : {}),
    };
  }

  /** Whether crops of this camera are deleted when no event points at them. */
  private prunesCrops(cameraId: string): boolean {
    return this.o.crops !== undefined && this.o.keepAllCrops !== true && !redactionExempt(this.o.redactExemptCameras ?? [], cameraId);
  }

  /** Deletes crops no event points at (after the events are out); a failure is counted and logged, never thrown. */
  private deleteCrops(refs: readonly string[], events: readonly IdentityEvent[]): void {
    const store = this.o.crops;
    if (!store || refs.length === 0) return;
    // belt and braces: never a crop that one of these events shows
    const shown = new Set(events.map((e) => e.thumbnailRef));
    for (const ref of new Set(refs)) {
      if (shown.has(ref)) continue;
      const p: Promise<void> = store.delete(ref).then(
        () => this.m.cropsDeleted?.inc(),
        (e: unknown) => {
          this.m.cropDeleteFailures?.inc();
          // the reference is a file name, not a face: safe to log, shortened
          this.o.logger?.warn('could not delete a face crop', { ref: ref.slice(0, 200), err: e });
        },
      );
      this.deleting.add(p);
      void p.finally(() => this.deleting.delete(p));
    }
  }

  /** Resolves once every crop deletion started so far has finished (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.deleting.size > 0 || this.recording.size > 0) await Promise.all([...this.deleting, ...this.recording]);
  }

  /**
   * Records in the crop store's erasure index the crops that name an identity (`pairs`: identity, ref).
   * Resolves once they are written: process() awaits it before its events go out, so that no event points
   * at a crop an erasure cannot find; a failure fails the batch (it is retried).
   */
  private record(pairs: ReadonlyArray<readonly [string, string]>): Promise<void> {
    const store = this.o.crops;
    if (!store?.recordThumbnail || pairs.length === 0) return Promise.resolve();
    const unique = new Map(pairs.map(([identity, ref]) => [`${identity}\u0000${ref}`, [identity, ref] as const]));
    const p = Promise.all([...unique.values()].map(([identity, ref]) => store.recordThumbnail!(identity, ref))).then(() => undefined);
    this.recording.add(p);
    void p.catch(() => undefined).finally(() => this.recording.delete(p));
    return p;
  }

  /** The (identity, crop) pairs an erasure must find: the thumbnails of events naming an identity. */
  private named(events: readonly IdentityEvent[]): Array<readonly [string, string]> {
    return events.flatMap((e) => (e.identity !== null && e.thumbnailRef !== null ? [[e.identity, e.thumbnailRef] as const] : []));
  }

  /** Whether `identity` was erased recently (its matches are taken as unknown); forgets old erasures. */
  private isErased(identity: string | null): boolean {
    if (identity === null || this.erased.size === 0) return false;
    const now = this.now();
    for (const [id, at] of this.erased) if (now - at > ERASED_MEMORY_MS) this.erased.delete(id);
    return this.erased.has(identity);
  }

  /** Drops the tracks and cooldowns of erased identities from `tracks`/`lastSeen`; returns their crops. */
  private purgeErased(tracks: Map<string, TrackState>, lastSeen: Map<string, number>): string[] {
    if (this.erased.size === 0) return [];
    const refs: string[] = [];
    for (const t of [...tracks.values()]) {
      if (!this.erased.has(t.identity ?? '') && !this.erased.has(t.announced?.identity ?? '')) continue;
      tracks.delete(t.trackId);
      // a late face of it must not start it again; none of its crops is shown any more
      this.ended.set(t.trackId, []);
      if (t.thumbnailRef !== null) refs.push(t.thumbnailRef);
      refs.push(...t.published);
    }
    for (const k of [...lastSeen.keys()]) if (this.erased.has(k.slice(k.indexOf('\u0000') + 1))) lastSeen.delete(k);
    return refs;
  }

  /**
   * Erases an identity deleted from the gallery (its change notification): its tracks and cooldowns are
   * dropped without events, and every crop of it is deleted (the erasure index, and the thumbnail candidates
   * of its live tracks). Resolves with the number of crops the index held. A re-enrolment (`remember`) ends
   * the unknown-for-a-while rule.
   */
  async forget(identity: string): Promise<number> {
    this.erased.set(identity, this.now());
    const refs = this.purgeErased(this.tracks, this.lastSeen);
    this.m.erasures?.inc();
    const store = this.o.crops;
    if (!store) return 0;
    // an index record begun before the erasure must not write after it
    while (this.recording.size > 0) await Promise.allSettled([...this.recording]);
    const n = store.eraseIdentity ? await eraseIdentityCrops(store, identity) : 0;
    // the candidates of its live tracks, which no event showed (so the index does not hold them)
    for (const ref of new Set(refs)) await store.delete(ref).catch((e: unknown) => this.o.logger?.warn('could not delete a face crop of an erased identity', { ref: ref.slice(0, 200), err: e }));
    return n;
  }

  /** The identity was enrolled (again): matches naming it are its own again. */
  remember(identity: string): void {
    this.erased.delete(identity);
  }

  /** The thumbnail an event may point at: a named identity's, or anyone's on an exempt camera. */
  private thumbnail(identity: string | null, t: TrackState): string | null {
    if (t.thumbnailRef === null || identity !== null || redactionExempt(this.o.redactExemptCameras ?? [], t.cameraId)) return t.thumbnailRef;
    this.m.withheld?.inc();
    return null;
  }

  private wanted(t: TrackState): boolean {
    const r = this.rules;
    if (r.cameras.length > 0 && !r.cameras.includes(t.cameraId)) return false;
    if (t.faces < r.minFaces) return false;
    if (t.identity === null) return r.unknown;
    if (r.watch.length > 0 && !r.watch.includes(t.identity)) return false;
    return t.confidence >= r.minConfidence;
  }

  /** Applies one match to a (staged) track; returns the events it causes. */
  private onMatch(m: Match, tracks: Map<string, TrackState>, lastSeen: Map<string, number>, events: IdentityEvent[], obsolete: string[], kept: Array<readonly [string, string]>): void {
    // tracks of this camera that a later face shows to have ended
    for (const t of tracks.values()) {
      if (t.cameraId === m.cameraId && t.trackId !== m.trackId && t.lastTs < m.captureTs - this.trackTimeoutMs) this.end(t, tracks, lastSeen, events, obsolete);
    }
    const given = m.track ?? { identity: m.identity, confidence: m.score === null ? 0 : Math.max(0, m.score), startTs: m.captureTs, faces: 1, reason: 'frame' };
    // a match made before the matcher learned of an erasure still names the person: unknown now
    const decision = this.isErased(given.identity) ? { ...given, identity: null } : given;
    const prune = this.prunesCrops(m.cameraId);
    const ended = this.ended.get(m.trackId);
    if (ended) {
      // a late face of a track that has ended: its crop can no longer be shown (unless it is one the track's
      // events showed, redelivered)
      if (prune && m.cropRef !== undefined && !ended.includes(m.cropRef)) obsolete.push(m.cropRef);
      return;
    }
    let t = tracks.get(m.trackId);
    if (!t) {
      t = {
        trackId: m.trackId,
        cameraId: m.cameraId,
        identity: null,
        confidence: 0,
        startTs: Math.min(decision.startTs, m.captureTs),
        lastTs: m.captureTs,
        faces: 0,
        suppressed: false,
        lastWall: 0,
        thumbnailRef: null,
        published: [],
        stable: 0,
      };
    } else {
      t = { ...t };
    }
    if (m.captureTs < t.lastTs && decision.faces <= t.faces) {
      // an old, redelivered face: nothing new; its crop stays only if it is the candidate or was shown
      if (prune && m.cropRef !== undefined && m.cropRef !== t.thumbnailRef && !t.published.includes(m.cropRef)) obsolete.push(m.cropRef);
      return;
    }
    t.stable = t.identity === decision.identity ? t.stable + 1 : 1;
    t.identity = decision.identity;
    t.confidence = decision.confidence;
    t.faces = Math.max(t.faces, decision.faces);
    t.lastTs = Math.max(t.lastTs, m.captureTs);
    t.lastWall = this.now();
    if (decision.identity === null && 'unknownCluster' in decision && decision.unknownCluster) t.unknownCluster = decision.unknownCluster;
    const previous = t.thumbnailRef;
    t.thumbnailRef = m.track?.bestCropRef ?? m.cropRef ?? t.thumbnailRef;
    // crops kept whole (keepAllCrops, an exempt camera): every crop of a named face must be erasable
    if (!prune && this.o.crops && decision.identity !== null && m.cropRef !== undefined) kept.push([decision.identity, m.cropRef]);
    if (prune) {
      // this face's crop, when it is not the candidate (it never will be), and the candidate it replaced
      if (m.cropRef !== undefined && m.cropRef !== t.thumbnailRef && !t.published.includes(m.cropRef)) obsolete.push(m.cropRef);
      if (previous !== null && previous !== t.thumbnailRef && !t.published.includes(previous)) obsolete.push(previous);
    }
    tracks.set(t.trackId, t);
    if (t.suppressed) {
      if (t.identity !== null) lastSeen.set(`${t.cameraId}\u0000${t.identity}`, t.lastTs);
      return;
    }
    if (t.stable < this.rules.minStable) return; // the identity is still settling
    if (!t.announced) {
      if (!this.wanted(t)) return;
      if (t.identity !== null) {
        const prev = lastSeen.get(`${t.cameraId}\u0000${t.identity}`);
        const othersLive = [...tracks.values()].some((o) => o !== t && o.announced && o.cameraId === t.cameraId && o.announced.identity === t.identity);
        if (othersLive || (prev !== undefined && t.startTs - prev < this.rules.cooldownMs)) {
          t.suppressed = true;
          lastSeen.set(`${t.cameraId}\u0000${t.identity}`, t.lastTs);
          this.m.suppressed?.inc({ reason: othersLive ? 'same-identity-live' : 'cooldown' });
          return;
        }
      }
      t.announced = { identity: t.identity, confidence: t.confidence };
      events.push(this.event('enter', t));
      this.m.latency?.observe({}, Math.max(0, (this.now() - m.captureTs) / 1000));
      return;
    }
    const a = t.announced;
    if (a.identity !== t.identity || Math.abs(a.confidence - t.confidence) >= this.rules.confidenceStep) {
      t.announced = { identity: t.identity, confidence: t.confidence };
      events.push(this.event('update', t));
      this.m.latency?.observe({}, Math.max(0, (this.now() - m.captureTs) / 1000));
    }
  }

  private end(ending: TrackState, tracks: Map<string, TrackState>, lastSeen: Map<string, number>, events: IdentityEvent[], obsolete: string[]): void {
    // a copy: the exit event records its thumbnail in `published`, and a staged batch must not touch the
    // committed track
    const t = { ...ending };
    tracks.delete(t.trackId);
    const id = t.announced?.identity ?? t.identity;
    if (id !== null && (t.announced || t.suppressed)) {
      const k = `${t.cameraId}\u0000${id}`;
      lastSeen.set(k, Math.max(lastSeen.get(k) ?? 0, t.lastTs));
    }
    if (t.announced) events.push(this.event('exit', t));
    // the last candidate, unless an event showed it (the exit of a named track does)
    if (this.prunesCrops(t.cameraId) && t.thumbnailRef !== null && !t.published.includes(t.thumbnailRef)) obsolete.push(t.thumbnailRef);
    if (t.announced) {
      // its exit is out: a late face must not enter it again (an unannounced one may simply come back)
      this.ended.set(t.trackId, t.published);
      if (this.ended.size > 100_000) this.ended.delete(this.ended.keys().next().value!);
    }
  }

  private encode(events: IdentityEvent[]): OutgoingMessage[] {
    for (const e of events) this.m.events?.inc({ type: e.type, known: e.identity === null ? 'false' : 'true' });
    return events.map((e) => ({ key: e.cameraId, value: IdentityEventSchema.encode(e) }));
  }

  async process(messages: ConsumedMessage[], _ctx: HandlerContext): Promise<StageResult> {
    const failures: StageFailure[] = [];
    // staged copies: kept only once the events are out
    const tracks = new Map(this.tracks);
    const lastSeen = new Map(this.lastSeen);
    const events: IdentityEvent[] = [];
    const obsolete: string[] = [];
    const kept: Array<readonly [string, string]> = [];
    for (const msg of messages) {
      let m: Match;
      try {
        m = MatchSchema.decode(msg.value);
      } catch (e) {
        const err = toFaceflowError(e);
        failures.push({ message: msg, error: err });
        if (this.failedOnce.first(msg)) this.m.dropped?.inc({ stage: this.name, reason: err.code.toLowerCase() });
        continue;
      }
      this.onMatch(m, tracks, lastSeen, events, obsolete, kept);
    }
    this.pruneCooldowns(lastSeen);
    // before the events are out: an event must never point at a crop that an erasure cannot find
    await this.record([...this.named(events), ...kept]);
    return {
      outputs: [{ topic: this.o.eventsTopic, messages: this.encode(events) }],
      failures,
      commit: () => {
        this.tracks = tracks;
        this.lastSeen = lastSeen;
        // an erasure that came while this batch was out: its tracks go again (their crops with them)
        obsolete.push(...this.purgeErased(this.tracks, this.lastSeen));
        // the events are out: the crops none of them points at can go
        this.deleteCrops(obsolete, events);
      },
    };
  }

  private pruneCooldowns(lastSeen: Map<string, number>): void {
    if (lastSeen.size < 10_000) return;
    let newest = 0;
    for (const v of lastSeen.values()) newest = Math.max(newest, v);
    for (const [k, v] of lastSeen) if (v < newest - this.rules.cooldownMs) lastSeen.delete(k);
  }

  /**
   * Ends the tracks whose camera has been silent for `idleMs` of wall time (a person left and nobody else
   * is in view, so no later face moves capture time on). Call it on a timer; publish what it returns.
   * Applied at once: a lost exit is only a missing event, a repeated one would be a duplicate.
   */
  sweep(): StageOutput[] {
    const now = this.now();
    const lastByCamera = new Map<string, number>();
    for (const t of this.tracks.values()) lastByCamera.set(t.cameraId, Math.max(lastByCamera.get(t.cameraId) ?? 0, t.lastWall));
    const events: IdentityEvent[] = [];
    const obsolete: string[] = [];
    for (const t of [...this.tracks.values()]) {
      if (now - lastByCamera.get(t.cameraId)! >= this.idleMs) this.end(t, this.tracks, this.lastSeen, events, obsolete);
    }
    // only crops no event points at: deleting them does not wait for the exits to be published
    this.deleteCrops(obsolete, events);
    // an exit's thumbnail is its track's last candidate, mostly recorded by an earlier event already
    void this.record(this.named(events)).catch((e: unknown) => this.o.logger?.error('could not record thumbnails in the erasure index', { err: e }));
    return events.length ? [{ topic: this.o.eventsTopic, messages: this.encode(events) }] : [];
  }

  /** Ends every track (end of the source, shutdown). */
  flush(): StageOutput[] {
    const events: IdentityEvent[] = [];
    const obsolete: string[] = [];
    for (const t of [...this.tracks.values()]) this.end(t, this.tracks, this.lastSeen, events, obsolete);
    this.deleteCrops(obsolete, events);
    void this.record(this.named(events)).catch((e: unknown) => this.o.logger?.error('could not record thumbnails in the erasure index', { err: e }));
    return events.length ? [{ topic: this.o.eventsTopic, messages: this.encode(events) }] : [];
  }
}
