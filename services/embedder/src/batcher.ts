/**
 * Dynamic batching: items submitted from anywhere (frames of several partitions, i.e. several cameras) are
 * gathered into one batch of at most `maxBatch`, which starts when it is full or when its first item has
 * waited `maxWaitMs`; at most `maxInFlight` batches run at once (items wait meanwhile, so under load batches
 * fill up and the engine sees larger batches: latency traded for throughput only when there is a queue).
 */
export interface BatcherOptions<T, R> {
  maxBatch: number;
  maxWaitMs: number;
  /** Batches running at once (default 1). */
  maxInFlight?: number;
  /** Runs one batch; returns one result or one Error per item, in order. May throw for the whole batch. */
  run: (items: T[]) => Promise<Array<R | Error>>;
  /** Observes each batch's size (metrics). */
  onBatch?: (size: number) => void;
}

interface Waiting<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

export class Batcher<T, R> {
  private queue: Waiting<T, R>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readonly maxInFlight: number;

  constructor(private readonly options: BatcherOptions<T, R>) {
    if (!(options.maxBatch >= 1)) throw new RangeError('maxBatch must be >= 1');
    if (!(options.maxWaitMs >= 0)) throw new RangeError('maxWaitMs must be >= 0');
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 1);
  }

  /** Items queued, not yet in a running batch. */
  get pending(): number {
    return this.queue.length;
  }

  get running(): number {
    return this.inFlight;
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    if (this.queue.length >= this.options.maxBatch || this.options.maxWaitMs === 0) {
      this.flush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.maxWaitMs);
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    const batch = this.queue.splice(0, this.options.maxBatch);
    this.inFlight++;
    this.options.onBatch?.(batch.length);
    void this.options
      .run(batch.map((w) => w.item))
      .then(
        (results) => {
          batch.forEach((w, i) => {
            const r = results[i];
            if (r instanceof Error) w.reject(r);
            else if (r === undefined) w.reject(new Error('batcher: run returned fewer results than items'));
            else w.resolve(r);
          });
        },
        (e: unknown) => batch.forEach((w) => w.reject(e)),
      )
      .finally(() => {
        this.inFlight--;
        // what queued while this batch ran has waited already: start it at once
        if (this.queue.length > 0 && this.inFlight < this.maxInFlight) this.flush();
      });
  }
}
