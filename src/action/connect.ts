/**
 * What main, post and the renewer share without the runner's toolkit (so that the renewer's bundle
 * carries no @actions/core): the client for the action's credentials, and cancellation.
 */
import { createClient } from "../client/client.js";
import { VERSION } from "../version.js";
import { jobIdTokens } from "./id-token.js";
import type { Auth } from "./inputs.js";

export interface ConnectOptions {
  url: string;
  auth: Auth;
  /** Told of every ID token fetched, e.g. to mask it in the log. */
  onIdToken?: (token: string) => void;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
}

/** The LSS client: with the API token, the job's OIDC ID tokens (fetched as they expire), or none. */
export const connect = (opts: ConnectOptions) =>
  createClient({
    url: opts.url,
    token:
      opts.auth.kind === "token"
        ? opts.auth.token
        : opts.auth.kind === "oidc"
          ? jobIdTokens(opts.auth, { onToken: opts.onIdToken })
          : undefined,
    userAgent: `lss-action/${VERSION}`,
    onRetry: opts.onRetry,
  });

/** Aborted when the runner cancels the step (SIGINT, then SIGTERM 7.5 s later). */
export function cancellation(): AbortSignal {
  const controller = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => controller.abort(new Error(`received ${signal}`)));
  }
  return controller.signal;
}
