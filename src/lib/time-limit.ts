// One promise against a time limit: the shape of the daemon's deadlines (a DNS lookup, a sender's
// evaluation, the sender's wait in hybrid mode, the attempts a stop waits for).

export interface TimeLimitOptions {
  /** the timer does not keep the process alive on its own */
  unref?: boolean;
}

/**
 * What `work` settles to, or what `late()` gives (or throws) once `ms` have passed first. The
 * timer is cleared either way. `work` is not stopped when it is late: ending it, or leaving it
 * to finish, is the caller's choice.
 */
export async function withinTime<T, L>(
  work: Promise<T>,
  ms: number,
  late: () => L,
  options: TimeLimitOptions = {},
): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<L>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(late());
      } catch (err) {
        reject(err);
      }
    }, ms);
    if (options.unref) timer.unref();
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
