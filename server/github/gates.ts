/**
 * Environments gated by a lock, with no runner: GitHub asks (deployment_protection_rule), the gate
 * acquires the rule's key for that deployment in the key's one queue (beside the action's
 * waiters), and approves once it holds it. GitHub says when the job ended (workflow_job completed):
 * the gate releases. Between the two nobody renews: the lease's TTL is the rule's longest hold.
 *
 * A job's end may race a grant on another instance (a tick asks for the gate as the job ends):
 * the end is written first (a claim), and a gate that finds it after its grant gives the key back.
 */
import { sha256Hex } from "../crypto.js";
import type { AcquireOutcome, Actor, LockRef, LockStore, RecordStore } from "../stores/types.js";
import type { GateRule, GitHubAppConfig } from "./config.js";
import type { Outbox, OutboxCall } from "./outbox.js";
import { hmacHex } from "./signature.js";

/** How long a gate keeps its place in a key's queue without being asked again (each tick asks). */
export const GATE_QUEUE_WINDOW_MS = 10 * 60_000;
/** GitHub waits 30 days for a decision, then fails the job; a gate is remembered a day longer. */
const GATE_MEMORY_MS = 31 * 86_400_000;
/** GitHub takes up to 10 status comments a deployment; the last is kept for the approval's sake. */
const MAX_STATUS_UPDATES = 9;
export const APP_ACTOR: Actor = { id: "github-app", name: "GitHub App" };

export interface Gate {
  id: string;
  repositoryId: number;
  repository: string;
  runId: number;
  /** GitHub's deployment of the job (a re-run, or another job of the run, has its own). */
  deploymentId: number;
  environment: string;
  installationId: number;
  refs: LockRef[];
  rule: GateRule;
  holder: string;
  since: number;
  state: "waiting" | "held";
  /** The key it holds (a pool: the one it got), and since when. */
  heldKey: string | null;
  heldAt?: number;
  lastStatus: string | null;
  statusUpdates: number;
}

/** A gate as the status API and the dashboard show it: who waits (or holds) at GitHub's gate, since when. */
export const gateView = (g: Gate) => ({
  repository: g.repository,
  environment: g.environment,
  run_url: g.holder,
  deployment_id: g.deploymentId,
  keys: g.refs.map((r) => r.key),
  mode: g.rule.mode,
  state: g.state,
  held_key: g.heldKey,
  since: new Date(g.since).toISOString(),
});
export type GateView = ReturnType<typeof gateView>;

/** Waiting first, then held; oldest first (the queue's order: gates join it as they are asked). */
export const inQueueOrder = (gates: Gate[]) =>
  [...gates].sort((a, b) => (a.state === b.state ? a.since - b.since : a.state === "waiting" ? -1 : 1));

/** The gates on one key, in queue order, as shown (none read when no rule names the key). */
export const gatesOnKey =
  (gates: Pick<Gates, "all" | "gatesOn">) =>
  async (ref: LockRef): Promise<GateView[]> => {
    if (!gates.gatesOn(ref)) return [];
    const on = (await gates.all()).filter(
      (g) => g.rule.namespace === ref.namespace && g.refs.some((r) => r.key === ref.key),
    );
    return inQueueOrder(on).map(gateView);
  };

/** The webhook payloads' fields the gates read (validated by the route). */
export interface ProtectionRuleRequest {
  environment: string;
  runId: number;
  deploymentId: number;
  repositoryId: number;
  repository: string;
  installationId: number;
}
export interface JobCompleted {
  runId: number;
  /** The job's deployment (the payload's deployment names it: only jobs with one are gated). */
  deploymentId: number;
  repositoryId: number;
  environment: string;
}

export type GateDecision = "approved" | "queued" | "rejected" | "no_rule" | "ended";

export interface Gates {
  requested(req: ProtectionRuleRequest): Promise<GateDecision>;
  /** Releases (or takes out of the queue) the job's gate; how many it ended (0 or 1). */
  completed(job: JobCompleted): Promise<number>;
  /** Every waiting gate asks again, in arrival order; gates past their time are forgotten. */
  advance(): Promise<void>;
  /** Whether a call about a gate is still wanted: an approval while it holds, a status while it waits. */
  wants(call: Pick<OutboxCall, "gateId" | "kind">): Promise<boolean>;
  /** Whether a change of this key may let a gate in (its rules name it). */
  gatesOn(ref: LockRef): boolean;
  /** Every gate, waiting or held, for the status API and the dashboard. */
  all(): Promise<Gate[]>;
}

export function createGates(deps: {
  store: LockStore;
  outbox: Outbox;
  config: GitHubAppConfig;
  githubUrl: string;
  now: () => number;
  log: (line: string) => void;
}): Gates {
  const { store, outbox, config, now } = deps;
  const records = store.records("gates");
  // The gate's lease token: derived from the webhook secret, so only this server can make it.
  const tokenOf = (repositoryId: number, deploymentId: number) =>
    hmacHex(config.webhookSecret, `gate\u001f${repositoryId}\u001f${deploymentId}`);
  const idOf = (repositoryId: number, deploymentId: number) => sha256Hex(tokenOf(repositoryId, deploymentId));
  const endClaim = (id: string) => `github-ended:${id}`;

  // GitHub's environment names are case-insensitive (QA and qa are one environment).
  const ruleFor = (repositoryId: number, environment: string) =>
    config.rules.find(
      (r) => r.repositoryId === repositoryId && r.environment.toLowerCase() === environment.toLowerCase(),
    ) ?? null;
  const gatedKeys = new Set(config.rules.flatMap((r) => r.keys.map((k) => `${r.namespace}\u001f${k}`)));

  const reviewPath = (gate: Pick<Gate, "repository" | "runId">) =>
    `/repos/${gate.repository}/actions/runs/${gate.runId}/deployment_protection_rule`;
  /** A review call; `ofGate`: sent only while the gate wants it (see wants). */
  const review = (
    gate: Gate,
    kind: "approve" | "reject" | "status",
    id: string,
    body: object,
    ofGate = true,
  ) =>
    outbox.send({
      id: `${gate.id}:${id}`,
      kind,
      ...(ofGate ? { gateId: gate.id } : {}),
      installationId: gate.installationId,
      path: reviewPath(gate),
      body: { environment_name: gate.environment, ...body },
    });

  const params = (gate: Gate) => ({
    tokenHash: gate.id,
    holderId: gate.holder,
    reason: `deployment to ${gate.environment}`,
    ttlMs: gate.rule.maxHoldMs,
    registeredOnly: false,
    queueWindowMs: GATE_QUEUE_WINDOW_MS,
    mode: gate.rule.mode,
    limit: gate.rule.limit,
    actor: APP_ACTOR,
  });
  const keyName = (gate: Gate, key: string) => `${gate.rule.namespace}/${key}`;

  /** Give back whatever the gate's token holds or waits for on its keys, and forget the gate. */
  const endGate = async (id: string, refs: LockRef[], holder: string | null) => {
    for (const ref of refs) {
      const released = await store.release(ref, { tokenHash: id, registeredOnly: false, actor: APP_ACTOR });
      if (released.outcome !== "released") await store.leave(ref, id, { holderId: holder, actor: APP_ACTOR });
    }
    await records.delete(id);
    // An approval still in the outbox must not let a job in that holds nothing now.
    await outbox.cancel(id);
  };

  /** After a write: had the job ended meanwhile (on any instance), the gate gives everything back. */
  const endedMeanwhile = async (gate: Gate) => {
    if (!(await store.claimed(endClaim(gate.id)))) return false;
    await endGate(gate.id, gate.refs, gate.holder);
    return true;
  };

  /** Ask for the gate's key(s) once more, and tell GitHub what changed. */
  const ask = async (gate: Gate): Promise<GateDecision> => {
    const outcome = await store.acquireAny(gate.refs, params(gate));
    if (outcome.outcome === "granted" || outcome.outcome === "retried") {
      const key = gate.refs[outcome.index]?.key ?? "";
      const wasHeld = gate.state === "held";
      const held: Gate = { ...gate, state: "held", heldKey: key, heldAt: gate.heldAt ?? now() };
      await records.put(gate.id, JSON.stringify(held));
      if (await endedMeanwhile(held)) return "ended";
      if (!wasHeld) {
        const comment = `LSS: ${keyName(gate, key)} is held for this deployment (${gate.rule.mode}, fencing token ${outcome.lease.fencingToken}) until its job ends.`;
        await review(held, "approve", "approve", { state: "approved", comment });
      }
      return "approved";
    }
    if (outcome.outcome === "held" || outcome.outcome === "queued") {
      if (await endedMeanwhile(gate)) return "ended";
      const text = statusText(gate, outcome);
      if (text !== gate.lastStatus && gate.statusUpdates < MAX_STATUS_UPDATES) {
        const updated: Gate = { ...gate, lastStatus: text, statusUpdates: gate.statusUpdates + 1 };
        await records.put(gate.id, JSON.stringify(updated));
        await review(updated, "status", `status-${updated.statusUpdates}`, { comment: text });
      }
      return "queued";
    }
    // A key this gate can never hold as asked (a /locks lock, another limit, a full namespace).
    await endGate(gate.id, gate.refs, gate.holder);
    const comment = `LSS: cannot gate on ${gate.refs.map((r) => keyName(gate, r.key)).join(", ")}: ${outcome.outcome}`;
    await review(gate, "reject", "reject", { state: "rejected", comment }, false);
    return "rejected";
  };

  const statusText = (gate: Gate, outcome: AcquireOutcome) => {
    const position = "position" in outcome ? outcome.position : 0;
    const holder =
      outcome.outcome === "held" ? (outcome.lease.holderId ?? "another holder") : "the waiters before it";
    const keys = gate.refs.map((r) => keyName(gate, r.key)).join(", ");
    return `LSS: waiting for ${keys}, held by ${holder}${position ? `; place ${position} in the queue` : ""}.`;
  };

  const all = async (store: RecordStore) =>
    Object.values(await store.all()).map((raw) => JSON.parse(raw) as Gate);

  /**
   * A held gate past its longest hold: its lease has expired by its TTL (the job's end was never
   * heard of). A waiting one past GitHub's 30 days: GitHub has failed the job.
   */
  const outlived = (gate: Gate) =>
    gate.state === "held"
      ? (gate.heldAt ?? gate.since) + gate.rule.maxHoldMs < now()
      : gate.since + GATE_MEMORY_MS < now();

  let advancing: Promise<void> = Promise.resolve();
  const report = (err: unknown) => deps.log(`lss github: ${(err as Error).message}`);

  return {
    async requested(req) {
      const rule = ruleFor(req.repositoryId, req.environment);
      const id = idOf(req.repositoryId, req.deploymentId);
      const gate: Gate = {
        id,
        ...req,
        refs: rule ? rule.keys.map((key) => ({ namespace: rule.namespace, key })) : [],
        rule: rule as GateRule,
        holder: `${deps.githubUrl}/${req.repository}/actions/runs/${req.runId}`,
        since: now(),
        state: "waiting",
        heldKey: null,
        lastStatus: null,
        statusUpdates: 0,
      };
      if (!rule) {
        const comment = `LSS: no gate rule for ${req.repository}'s environment ${req.environment}; approved.`;
        await review(gate, "approve", "approve", { state: "approved", comment }, false);
        return "no_rule";
      }
      const known = await records.get(id);
      if (known) return ask(JSON.parse(known) as Gate); // GitHub asking again
      // A deployment whose gate already began: a replayed body (its gate may have ended), not a new ask.
      if (!(await store.claimOnce(`github-gate:${id}`, GATE_MEMORY_MS))) return "ended";
      try {
        await records.put(id, JSON.stringify(gate));
      } catch (err) {
        // Not begun: GitHub's redelivery must begin it, not be taken for a replay.
        await store.unclaim(`github-gate:${id}`).catch(() => {});
        throw err;
      }
      return ask(gate);
    },

    async completed(job) {
      const rule = ruleFor(job.repositoryId, job.environment);
      if (!rule) return 0;
      const id = idOf(job.repositoryId, job.deploymentId);
      // Written before anything is given back: a grant racing this end finds it and undoes itself.
      await store.claimOnce(endClaim(id), GATE_MEMORY_MS);
      const raw = await records.get(id);
      const known = raw ? (JSON.parse(raw) as Gate) : null;
      // The rule's keys now, and those the gate took (the rule may have changed since).
      const refs = new Map(
        [...rule.keys.map((key) => ({ namespace: rule.namespace, key })), ...(known?.refs ?? [])].map((r) => [
          `${r.namespace}\u001f${r.key}`,
          r,
        ]),
      );
      await endGate(id, [...refs.values()], known?.holder ?? null);
      if (raw) await this.advance();
      return raw ? 1 : 0;
    },

    advance() {
      // One pass at a time on an instance; other instances' passes are safe (the script decides).
      advancing = advancing
        .catch(() => {}) // a failed pass (the store down) does not stop the next
        .then(async () => {
          const gates = await all(records);
          for (const gate of gates.filter(outlived)) await endGate(gate.id, gate.refs, gate.holder);
          const waiting = gates.filter((g) => g.state === "waiting" && !outlived(g));
          for (const gate of waiting.sort((a, b) => a.since - b.since)) await ask(gate).catch(report);
        });
      return advancing;
    },

    async wants(call) {
      if (!call.gateId) return true;
      const raw = await records.get(call.gateId);
      if (!raw) return false;
      const state = (JSON.parse(raw) as Gate).state;
      return call.kind === "approve" ? state === "held" : state === "waiting";
    },

    gatesOn: (ref) => gatedKeys.has(`${ref.namespace}\u001f${ref.key}`),
    all: () => all(records),
  };
}
