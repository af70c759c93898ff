// The post thread's heap limit. Without one, V8 sizes each isolate's heap from the machine's
// memory (about 4 GiB here) and, that far from its limit, lets the old generation grow to about
// four times what is live before it compacts: under a burst of hostile messages the post
// thread's heap reached 200 to 300 MB between compactions with 30 to 45 MB live, and RSS grew
// about 400 MiB (docs/fuzzing.md). A limit near what the thread can need bounds the thread
// outright. (V8's growing factor also shrinks with the limit, to 1.3 at 256 MiB: a compaction
// each time the heap grows by 30 %. npm start's `--heap-growing-percent=100` fixes it at 2, so
// the limit bounds the thread without setting how often it compacts: docs/benchmark.md.)

/**
 * The floor of the limit, in MiB: the thread's code and state (about 30 MB), and its small
 * messages in flight (up to api.concurrency of them, 1 MiB at most each) many times over.
 */
export const MIN_THREAD_HEAP_MB = 256;

/**
 * Heap (MiB) one large message may hold while it is parsed, per MiB of its size: its text
 * decoded whole (up to two bytes a character), the HTML rendering and the JSON body built from
 * them, and garbage not yet collected. Two 36 MiB text bodies parsed at once peaked at 407 MB.
 */
const HEAP_PER_MESSAGE_MB = 6;

/** Headroom (MiB) for the small messages, the code and the thread's own state. */
const HEADROOM_MB = 128;

/**
 * The post thread's old-generation limit, in MiB, for messages up to `maxMessageSize` bytes of
 * which `largeAtOnce` are parsed at once: at least MIN_THREAD_HEAP_MB.
 */
export function threadHeapLimitMb(
  maxMessageSize: number,
  largeAtOnce: number,
): number {
  const messageMb = Math.ceil(maxMessageSize / (1024 * 1024));
  return Math.max(
    MIN_THREAD_HEAP_MB,
    largeAtOnce * messageMb * HEAP_PER_MESSAGE_MB + HEADROOM_MB,
  );
}
