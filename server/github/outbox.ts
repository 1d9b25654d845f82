/**
 * The GitHub App's outbox (the durable outbox of ../outbox, for GitHub's API): a call GitHub must
 * get (an approval, a status, a check run) is kept until GitHub takes it, refuses it for good, or
 * it is too old to matter. Approving twice is harmless; an approval never sent is not, and neither
 * is one sent for a gate that no longer holds its key: a call about a gate is sent only while the
 * gate still wants it.
 */
import type { Metrics } from "../metrics.js";
import { type Attempt, createOutbox as createDurableOutbox, type OutboxMessage } from "../outbox/outbox.js";
import type { LockStore } from "../stores/types.js";
import { type GitHubApi, GitHubApiError } from "./api.js";

export type CallKind = "approve" | "reject" | "status" | "check";

export interface OutboxCall extends OutboxMessage {
  kind: CallKind;
  installationId: number;
  path: string;
  body: Record<string, unknown>;
  /** The gate the call is about. */
  gateId?: string;
}

/** Short enough that GitHub back from an outage gets its approvals within seconds. */
const MAX_BACKOFF_MS = 10_000;
/**
 * How long a call is worth sending. GitHub waits 30 days for a decision; a status comment or a
 * check run that could not be sent for a day has been overtaken by a newer one.
 */
const WORTH_MS: Record<CallKind, number> = {
  approve: 30 * 86_400_000,
  reject: 30 * 86_400_000,
  status: 3_600_000,
  check: 86_400_000,
};

export interface Outbox {
  /** Record the call, then send it (unless another instance is sending it). */
  send(call: Omit<OutboxCall, "attempts" | "nextAt" | "firstAt">): Promise<void>;
  /** Send every call that is due (the tick); when the next of those left is due, or null. */
  flush(): Promise<number | null>;
  /** The calls not yet taken by GitHub. */
  pending(): Promise<OutboxCall[]>;
  /** Forget every call about a gate (it ended: nothing it asked for is wanted any more). */
  cancel(gateId: string): Promise<void>;
}

export function createOutbox(deps: {
  store: Pick<LockStore, "records" | "claimOnce">;
  api: GitHubApi;
  now: () => number;
  log: (line: string) => void;
  metrics?: Pick<Metrics, "githubCall"> | null;
  /** Whether a call about a gate is still wanted (an approval: the gate still holds its key). */
  wanted?: (call: OutboxCall) => Promise<boolean>;
}): Outbox {
  const { api, log } = deps;

  const attempt = async (call: OutboxCall): Promise<Attempt> => {
    let status = 0;
    try {
      status = (await api.request(call.installationId, "POST", call.path, call.body)).status;
    } catch (err) {
      log(`lss github: ${(err as Error).message}`);
      // An installation GitHub no longer knows (the App uninstalled) answers its token 404: the
      // call is refused for good, as its own 404 would be. Anything else may pass.
      if (err instanceof GitHubApiError && err.status === 404) status = 404;
    }
    if (status >= 200 && status < 300) return "done";
    // Refused for good: the run no longer waits (approved already, cancelled, decided by someone
    // else), or is gone. What a gate holds stays held: a job that runs anyway (an approval that
    // went through before, an admin's bypass) must not share its key; its end, or the lease's
    // longest hold, gives it back.
    if (status === 404 || status === 410 || status === 422) {
      log(`lss github: ${call.path} answered ${status}; dropped ${call.id}`);
      return "refused";
    }
    return "retry";
  };

  const outbox = createDurableOutbox<OutboxCall>({
    store: deps.store,
    kind: "outbox",
    claimPrefix: "github-send",
    // GitHub's secondary rate limits dislike bursts: one call at a time, as before.
    concurrency: 1,
    now: deps.now,
    log,
    attempt,
    worthMs: (call) => WORTH_MS[call.kind],
    backoffMs: (attempts) => Math.min(1000 * 2 ** attempts, MAX_BACKOFF_MS),
    wanted: deps.wanted,
    counted: (call, result) => deps.metrics?.githubCall(call.kind, result),
  });
  return { ...outbox, cancel: (gateId) => outbox.cancel((call) => call.gateId === gateId) };
}
