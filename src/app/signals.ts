// SIGHUP: "read your files again" (a renewed TLS certificate). Listened for from the very
// start of `serve`, so that it never takes Node's default (the process ends); one that comes
// before the daemon is up is kept, and acted on once it is.

let handler: (() => void) | undefined;
let pending = false;

/** Starts listening for SIGHUP; call it first thing. */
export function listenForReload(): void {
  process.on('SIGHUP', () => {
    if (handler) handler();
    else pending = true;
  });
}

/** What a SIGHUP does from now on; run at once if one came before. */
export function onReload(fn: () => void): void {
  handler = fn;
  if (pending) {
    pending = false;
    fn();
  }
}
