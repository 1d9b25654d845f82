/**
 * The durable outbox between LSS and GitHub: a call GitHub must get (an approval, a status, a
 * check run) is put in the store before it is sent, and stays there until GitHub takes it, refuses
 * it for good, or it is too old to matter. The instance that decides a call sends it at once, and a
 * tick sends what is left, later and later; each attempt is claimed, so that instances send it once.
 * Approving twice is harmless; an approval never sent is not, and neither is one sent for a gate
 * that no longer holds its key: a call about a gate is sent only while the gate still wants it.
 */
import type { Metrics } from "../metrics.js";
import type { LockStore } from "../stores/types.js";
import { type GitHubApi, GitHubApiError } from "./api.js";

export type CallKind = "approve" | "reject" | "status" | "check";

export interface OutboxCall {
  /** One call per id: the same decision put twice is one call. */
  id: string;
  /** Two instances sending one id and version send it once; a new version replaces the old. */
  version?: string;
  kind: CallKind;
  installationId: number;
  path: string;
  body: Record<string, unknown>;
  /** The gate the call is about. */
  gateId?: string;
  attempts: number;
  nextAt: number;
  firstAt: number;
}

/** How long the outbox leaves a call to the instance that sends it at once, before a tick may. */
const SENDER_GRACE_MS = 10_000;
/** An attempt's claim: longer than an attempt takes (the API client's own retries included). */
const ATTEMPT_CLAIM_MS = 60_000;
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
  const { store, api, now, log } = deps;
  const calls = store.records("outbox");

  /** Whether the slot still holds this call (not a newer version of it, put meanwhile). */
  const current = async (call: OutboxCall) => {
    const raw = await calls.get(call.id);
    return raw !== null && (JSON.parse(raw) as OutboxCall).version === call.version;
  };
  const forget = async (call: OutboxCall) => {
    if (await current(call)) await calls.delete(call.id);
  };
  const claim = (call: OutboxCall) =>
    store.claimOnce(`github-send:${call.id}:${call.version ?? ""}:${call.attempts}`, ATTEMPT_CLAIM_MS);

  /** One attempt; what GitHub answered (0: no answer). */
  const attempt = async (call: OutboxCall) => {
    try {
      return (await api.request(call.installationId, "POST", call.path, call.body)).status;
    } catch (err) {
      log(`lss github: ${(err as Error).message}`);
      // An installation GitHub no longer knows (the App uninstalled) answers its token 404: the
      // call is refused for good, as its own 404 would be. Anything else may pass.
      return err instanceof GitHubApiError && err.status === 404 ? 404 : 0;
    }
  };

  const deliver = async (call: OutboxCall) => {
    if (deps.wanted && !(await deps.wanted(call))) {
      deps.metrics?.githubCall(call.kind, "dropped");
      log(`lss github: ${call.id} is no longer wanted (its gate ended); dropped`);
      await forget(call);
      return;
    }
    const status = await attempt(call);
    if (status >= 200 && status < 300) {
      deps.metrics?.githubCall(call.kind, "done");
      await forget(call);
      return;
    }
    // Refused for good: the run no longer waits (approved already, cancelled, decided by someone
    // else), or is gone. What a gate holds stays held: a job that runs anyway (an approval that
    // went through before, an admin's bypass) must not share its key; its end, or the lease's
    // longest hold, gives it back.
    if (status === 404 || status === 410 || status === 422) {
      log(`lss github: ${call.path} answered ${status}; dropped ${call.id}`);
      deps.metrics?.githubCall(call.kind, "dropped");
      await forget(call);
      return;
    }
    const attempts = call.attempts + 1;
    if (now() - call.firstAt > WORTH_MS[call.kind]) {
      log(`lss github: ${call.id} not taken after ${attempts} attempts; given up`);
      deps.metrics?.githubCall(call.kind, "expired");
      await forget(call);
      return;
    }
    deps.metrics?.githubCall(call.kind, "retry");
    const next = { ...call, attempts, nextAt: now() + Math.min(1000 * 2 ** attempts, MAX_BACKOFF_MS) };
    if (await current(call)) await calls.put(call.id, JSON.stringify(next));
  };

  const pending = async () => Object.values(await calls.all()).map((raw) => JSON.parse(raw) as OutboxCall);

  return {
    async send(fields) {
      const call: OutboxCall = { ...fields, attempts: 0, nextAt: now() + SENDER_GRACE_MS, firstAt: now() };
      await calls.put(call.id, JSON.stringify(call));
      if (await claim(call)) await deliver(call);
    },
    async flush() {
      for (const call of await pending()) {
        if (call.nextAt > now()) continue;
        try {
          if (await claim(call)) await deliver(call);
        } catch (err) {
          log(`lss github: ${(err as Error).message}`);
        }
      }
      const left = (await pending()).map((c) => c.nextAt);
      return left.length ? Math.min(...left) : null;
    },
    pending,
    async cancel(gateId) {
      for (const call of await pending()) if (call.gateId === gateId) await calls.delete(call.id);
    },
  };
}
