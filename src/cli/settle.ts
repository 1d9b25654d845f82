/** What the CLI does when the server could not confirm an acquire, and what a wrapped command inherits. */
import { type LockTarget, type LssClient, releaseAny } from "../client/client.js";
import { LssError } from "../client/errors.js";

/** Failures after which nobody knows whether the acquire was granted. */
const UNCERTAIN = new Set(["outcome_unknown", "unreachable", "unavailable", "bad_response"]);

/**
 * An acquire that failed after it was sent (the server answered outcome_unknown, or the connection
 * broke) may have been granted: release it with its token, and say what happened. Resolves with
 * the error to throw, its message extended.
 */
export async function unconfirmedAcquire(client: LssClient, target: LockTarget, token: string, err: unknown) {
  if (!(err instanceof LssError) || !UNCERTAIN.has(err.code)) return err;
  const released = await releaseAny(client, target, token);
  // Of a pool, nobody knows which key it may have been granted: releasing each is harmless.
  const command =
    typeof target === "string"
      ? `lss release ${target} --lease-token ${token}`
      : `for k in ${target.join(" ")}; do lss release "$k" --lease-token ${token}; done`;
  const what = released
    ? "it may have been granted, so it was released"
    : `it may have been granted: release it with \`${command}\`, or it frees itself when its lease expires`;
  return new LssError(err.code, `${err.message}; ${what}`, err.status, err.body);
}

/** The environment without the API token: a command run under a lock has no use for it. */
export function withoutApiToken(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { LSS_TOKEN: _token, ...rest } = env;
  return rest;
}
