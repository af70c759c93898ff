// A BridgeError as plain data, so it crosses a thread boundary (postMessage) and stays typed.
import {
  BridgeError,
  isTemporary,
  PermanentError,
  TemporaryError,
  type ApiFailureDetails,
} from './bridge-error.js';

/** The fields of an error that decide its fate: structured-clone safe. */
export interface WireError {
  temporary: boolean;
  message: string;
  responseCode?: number;
  configError?: boolean;
  retryAt?: number;
  api?: ApiFailureDetails;
}

/** Any error as wire data: one that is not a BridgeError is temporary (a fault of ours). */
export function toWire(err: unknown): WireError {
  const message = err instanceof Error ? err.message : String(err);
  if (!(err instanceof BridgeError)) {
    return { temporary: isTemporary(err), message };
  }
  const wire: WireError = {
    temporary: err.temporary,
    message,
    responseCode: err.responseCode,
    api: err.api,
  };
  if (err instanceof TemporaryError) {
    wire.configError = err.configError;
    wire.retryAt = err.retryAt;
  }
  return wire;
}

/** The error that `toWire` described, as a TemporaryError or PermanentError again. */
export function fromWire(wire: WireError): BridgeError {
  const { message, responseCode, api } = wire;
  return wire.temporary
    ? new TemporaryError(message, {
        responseCode,
        api,
        configError: wire.configError,
        retryAt: wire.retryAt,
      })
    : new PermanentError(message, { responseCode, api });
}
