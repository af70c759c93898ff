// Commands to the fleet's Redis gathered by turn of the event loop: what the lanes ask within one
// turn goes as one pipeline (one write and one read on the socket), which is what a command
// costs most under load.
import type { SharedState } from './shared-state.js';

/** A command and its arguments, as ioredis's `call()` takes them. */
export type RedisCommand = [string, ...Array<string | number>];

interface Queued {
  command: RedisCommand;
  done: (reply: unknown) => void;
}

/**
 * Sends the commands of one kind (`dedupe`) in batches. A reply is undefined when Redis did not
 * answer in time or refused the batch: every command of that batch is then answered locally
 * (SharedState.run() counts it and logs it once).
 */
export class RedisBatch {
  private queued: Queued[] = [];
  private flushing = false;

  constructor(
    private readonly shared: SharedState,
    private readonly kind: string,
  ) {}

  /** Queues a command for the end of this turn; resolves with its reply, or undefined. */
  send(command: RedisCommand): Promise<unknown> {
    // while Redis is away, answered (and counted) at once, as run() does
    if (!this.shared.available) return this.shared.run(this.kind, noop);
    return new Promise(done => {
      this.queued.push({ command, done });
      if (this.flushing) return;
      this.flushing = true;
      // after the microtasks queued now: the lanes that one reply woke ask together
      process.nextTick(() => this.flush());
    });
  }

  private flush(): void {
    this.flushing = false;
    const batch = this.queued;
    this.queued = [];
    void this.shared
      .run(this.kind, async redis => {
        if (batch.length === 1) return [await redis.call(...batch[0]!.command)];
        const pipeline = redis.pipeline();
        for (const { command } of batch) pipeline.call(...command);
        const replies = (await pipeline.exec()) ?? [];
        // a refusal (OOM, READONLY) is Redis's answer to the batch: all of it stays local
        const refused = replies.find(([err]) => err);
        if (refused) throw refused[0];
        return replies.map(([, reply]) => reply);
      })
      .then(replies => {
        for (const [i, { done }] of batch.entries()) done(replies?.[i]);
      });
  }
}

const noop = (): Promise<undefined> => Promise.resolve(undefined);
