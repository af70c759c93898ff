// The running configuration, replaced whole on SIGHUP: readers hold a view that always shows the
// configuration in force.
import type { Config } from './schema.js';

/**
 * Holds the configuration in force. `view` is a Config whose top-level slices (`smtp`, `routes`,
 * `delivery`...) are read anew on every access, so a part given the view at start and reading
 * `config.routes` when a message comes sees the table of the last reload. A part that copied a
 * value at start keeps that value: keys read so are reloaded only with a restart
 * (config-changes.ts says which).
 */
export class LiveConfig {
  private config: Config;
  readonly view: Config;

  constructor(initial: Config) {
    this.config = initial;
    const view = {};
    for (const key of Object.keys(initial)) {
      Object.defineProperty(view, key, {
        enumerable: true,
        get: () => (this.config as Record<string, unknown>)[key],
      });
    }
    this.view = Object.freeze(view) as Config;
  }

  /** The configuration in force (a frozen object, not the view). */
  get current(): Config {
    return this.config;
  }

  /** Puts `next` in force for every reader of the view. */
  replace(next: Config): void {
    this.config = next;
  }
}
