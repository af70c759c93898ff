// The error taxonomy: whether retrying can help decides the SMTP reply and, later, the queue's fate.

/** Base of every error the pipeline raises on purpose. `responseCode` is read by smtp-server. */
export abstract class BridgeError extends Error {
  abstract readonly temporary: boolean;
  readonly responseCode: number;
  /** the API's HTTP status and `errors` body, when the API answered */
  readonly api?: ApiFailureDetails;

  constructor(
    message: string,
    responseCode: number,
    options?: ErrorOptions & { api?: ApiFailureDetails },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.responseCode = responseCode;
    this.api = options?.api;
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/**
 * Whether retrying may help: a TemporaryError, or anything that is not a BridgeError (a bug, a
 * local fault: the sender or the queue tries again rather than lose the message).
 */
export function isTemporary(err: unknown): boolean {
  return !(err instanceof BridgeError) || err.temporary;
}

/** What the API said when it refused a body. */
export interface ApiFailureDetails {
  status?: number;
  errors: unknown[];
}

/** Retrying the same message later may succeed (API down, 5xx, 429, timeout, disk full). */
export class TemporaryError extends BridgeError {
  readonly temporary = true;
  /** Set when the failure means our own configuration is wrong (401/403/404). */
  readonly configError: boolean;
  /** Earliest time a retry makes sense, from `Retry-After`, in ms since the epoch. */
  readonly retryAt?: number;

  constructor(
    message: string,
    options: ErrorOptions & {
      responseCode?: number;
      configError?: boolean;
      retryAt?: number;
      api?: ApiFailureDetails;
    } = {},
  ) {
    super(message, options.responseCode ?? 451, options);
    this.configError = options.configError ?? false;
    this.retryAt = options.retryAt;
  }
}

/** Retrying the same message cannot help (API 400/422, unknown recipient, oversize). */
export class PermanentError extends BridgeError {
  readonly temporary = false;

  constructor(
    message: string,
    options: ErrorOptions & {
      responseCode?: number;
      api?: ApiFailureDetails;
    } = {},
  ) {
    super(message, options.responseCode ?? 554, options);
  }
}

/**
 * The message itself is past what the parser takes (its MIME structure over a limit): `554
 * 5.6.0` at the end of DATA, never accepted. Its text names the limit, so the sender is told it.
 */
export class MalformedMessageError extends PermanentError {
  constructor(message: string) {
    super(message, { responseCode: 554 });
  }
}

/** The daemon is closing: the client should come back later. */
export class ShutdownError extends BridgeError {
  readonly temporary = true;

  constructor(message = 'Service shutting down, try again later') {
    super(message, 421);
  }
}

/** Configuration or usage is invalid; the CLI exits 2 with this one line. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
    Object.setPrototypeOf(this, new.target.prototype);
  }
}
