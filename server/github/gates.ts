/**
 * Environments gated by a lock, with no runner: GitHub asks (deployment_protection_rule), the gate
 * acquires the rule's key for that run and environment in the key's one queue (beside the action's
 * waiters), and approves once it holds it. GitHub says when the job ended (workflow_job completed):
 * the gate releases. Between the two nobody renews: the lease's TTL is the rule's longest hold.
 *
 * Nothing is lost between LSS and GitHub: every call GitHub must get (an approval, a status) is put
 * in the outbox in the store before it is sent, and the next request or tick sends what is still
 * there. Approving twice is harmless; an approval never sent is not.
 */
import { sha256Hex } from "../crypto.js";
import type { Metrics } from "../metrics.js";
import type { AcquireOutcome, Actor, LockRef, LockStore, RecordStore } from "../stores/types.js";
import type { GitHubApi } from "./api.js";
import type { GateRule, GitHubAppConfig } from "./config.js";
import { hmacHex } from "./signature.js";

/** How long a gate keeps its place in a key's queue without being asked again (each tick asks). */
export const GATE_QUEUE_WINDOW_MS = 10 * 60_000;
/** How long the outbox leaves a call to the instance that sends it at once, before a tick may. */
const SENDER_GRACE_MS = 10_000;
/** How long a deployment's gate is remembered once it began: a replay of its request is ignored. */
const GATE_MEMORY_MS = 31 * 86_400_000;
/** GitHub takes up to 10 status comments a deployment; the last is kept for the approval's sake. */
const MAX_STATUS_UPDATES = 9;
const APP_ACTOR: Actor = { id: "github-app", name: "GitHub App" };

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
  /** The key it holds (a pool: the one it got). */
  heldKey: string | null;
  lastStatus: string | null;
  statusUpdates: number;
}

interface OutboxItem {
  id: string;
  gateId: string;
  installationId: number;
  path: string;
  body: Record<string, unknown>;
  attempts: number;
  nextAt: number;
}

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
  /** The job's environment (the payload's deployment names it: only jobs with one are gated). */
  environment: string;
}

export type GateDecision = "approved" | "queued" | "rejected" | "no_rule" | "ended";

export interface Gates {
  requested(req: ProtectionRuleRequest): Promise<GateDecision>;
  /** Releases (or takes out of the queue) the gates of the run; how many. */
  completed(job: JobCompleted): Promise<number>;
  /** Asks again for every waiting gate and sends what the outbox holds: the scheduler's entry point. */
  tick(): Promise<void>;
  /** The gates waiting now. */
  waiting(): Promise<Gate[]>;
  /** Every gate, waiting or held, for the status API. */
  all(): Promise<Gate[]>;
  /**
   * Until the signal aborts: listen on the keys gates wait for and ask again as soon as one is
   * released (on any instance), and tick at least every `everyMs` (expiries, the outbox).
   */
  follow(signal: AbortSignal, everyMs?: number): Promise<void>;
}

export function createGates(deps: {
  store: LockStore;
  api: GitHubApi;
  config: GitHubAppConfig;
  githubUrl: string;
  now?: () => number;
  log?: (line: string) => void;
  metrics?: Pick<Metrics, "githubCall"> | null;
}): Gates {
  const { store, api, config } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((line: string) => console.log(line));
  const gates = store.records("gates");
  const outbox = store.records("outbox");
  // The gate's lease token: derived from the webhook secret, so only this server can make it.
  const tokenOf = (repositoryId: number, deploymentId: number) =>
    hmacHex(config.webhookSecret, `gate\u001f${repositoryId}\u001f${deploymentId}`);

  const ruleFor = (repositoryId: number, environment: string) =>
    config.rules.find((r) => r.repositoryId === repositoryId && r.environment === environment) ?? null;

  const all = async (records: RecordStore) =>
    Object.values(await records.all()).map((raw) => JSON.parse(raw) as unknown);

  const reviewPath = (gate: Pick<Gate, "repository" | "runId">) =>
    `/repos/${gate.repository}/actions/runs/${gate.runId}/deployment_protection_rule`;

  /** Put the call in the outbox, then try it; the outbox keeps it until GitHub takes it. */
  const post = async (gate: Gate, kind: string, body: Record<string, unknown>) => {
    const item: OutboxItem = {
      id: `${gate.id}:${kind}`,
      gateId: gate.id,
      installationId: gate.installationId,
      path: reviewPath(gate),
      body: { environment_name: gate.environment, ...body },
      attempts: 0,
      // The ticks leave it to the one sending it now, unless that one is gone.
      nextAt: now() + SENDER_GRACE_MS,
    };
    await outbox.put(item.id, JSON.stringify(item));
    // Two instances deciding the same thing at once (a webhook and a tick): one of them sends it.
    if (await store.claimOnce(`github-send:${item.id}`, 10 * 60_000)) await deliver(item);
  };

  const deliver = async (item: OutboxItem) => {
    let status: number;
    try {
      status = (await api.request(item.installationId, "POST", item.path, item.body)).status;
    } catch (err) {
      status = 0;
      log(`lss github: ${(err as Error).message}`);
    }
    const kind = item.id.endsWith(":approve") ? "approve" : item.id.endsWith(":reject") ? "reject" : "status";
    if (status >= 200 && status < 300) {
      deps.metrics?.githubCall(kind, "done");
      await outbox.delete(item.id);
      return;
    }
    // The run no longer waits for this decision (cancelled, decided by someone else, gone): drop
    // it, and give back what an approval nobody will take would hold.
    if (status === 404 || status === 410 || status === 422) {
      log(`lss github: ${item.path} answered ${status}; dropped ${item.id}`);
      deps.metrics?.githubCall(kind, "dropped");
      await outbox.delete(item.id);
      if (kind === "approve") await abandon(item.gateId);
      return;
    }
    // Anything else may pass (a token revoked early, a rate limit, GitHub or the network down):
    // sent again, later and later, until GitHub takes it or the gate is gone.
    deps.metrics?.githubCall(kind, "retry");
    const attempts = item.attempts + 1;
    const next = { ...item, attempts, nextAt: now() + Math.min(1000 * 2 ** attempts, 60_000) };
    await outbox.put(item.id, JSON.stringify(next));
  };

  /** A gate whose deployment no longer waits: its lease (or queue place) goes, and its record. */
  const abandon = async (gateId: string) => {
    const raw = await gates.get(gateId);
    if (!raw) return;
    const gate = JSON.parse(raw) as Gate;
    await endGate(gate);
    await advance();
  };

  const params = (gate: Gate) => ({
    tokenHash: sha256Hex(tokenOf(gate.repositoryId, gate.deploymentId)),
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

  /** Release the gate's lease, or leave its queues, and forget it. */
  const endGate = async (gate: Gate) => {
    const { tokenHash } = params(gate);
    if (gate.state === "held" && gate.heldKey) {
      const ref = { namespace: gate.rule.namespace, key: gate.heldKey };
      await store.release(ref, { tokenHash, registeredOnly: false, actor: APP_ACTOR });
    } else {
      for (const ref of gate.refs)
        await store.leave(ref, tokenHash, { holderId: gate.holder, actor: APP_ACTOR });
    }
    await gates.delete(gate.id);
  };

  /** Ask for the gate's key(s) once more, and tell GitHub what changed. */
  const ask = async (gate: Gate): Promise<GateDecision> => {
    const outcome = await store.acquireAny(gate.refs, params(gate));
    if (outcome.outcome === "granted" || outcome.outcome === "retried") {
      const key = gate.refs[outcome.index]?.key ?? "";
      const wasHeld = gate.state === "held";
      const held: Gate = { ...gate, state: "held", heldKey: key };
      await gates.put(gate.id, JSON.stringify(held));
      if (!wasHeld) {
        const comment = `LSS: ${keyName(gate, key)} is held for this deployment (${gate.rule.mode}, fencing token ${outcome.lease.fencingToken}) until its job ends.`;
        await post(held, "approve", { state: "approved", comment });
      }
      return "approved";
    }
    if (outcome.outcome === "held" || outcome.outcome === "queued") {
      const text = statusText(gate, outcome);
      if (text !== gate.lastStatus && gate.statusUpdates < MAX_STATUS_UPDATES) {
        const updated: Gate = { ...gate, lastStatus: text, statusUpdates: gate.statusUpdates + 1 };
        await gates.put(gate.id, JSON.stringify(updated));
        await post(updated, `status-${updated.statusUpdates}`, { comment: text });
      }
      return "queued";
    }
    // A key this gate can never hold as asked (a /locks lock, another limit, a full namespace).
    await gates.delete(gate.id);
    await post(gate, "reject", {
      state: "rejected",
      comment: `LSS: cannot gate on ${gate.refs.map((r) => keyName(gate, r.key)).join(", ")}: ${outcome.outcome}`,
    });
    return "rejected";
  };

  const statusText = (gate: Gate, outcome: AcquireOutcome) => {
    const position = "position" in outcome ? outcome.position : 0;
    const holder =
      outcome.outcome === "held" ? (outcome.lease.holderId ?? "another holder") : "the waiters before it";
    const keys = gate.refs.map((r) => keyName(gate, r.key)).join(", ");
    return `LSS: waiting for ${keys}, held by ${holder}${position ? `; place ${position} in the queue` : ""}.`;
  };

  let advancing: Promise<void> = Promise.resolve();
  /** Every waiting gate asks again (in their queue's order, which the script keeps), one pass at a time. */
  const advance = () => {
    advancing = advancing.then(async () => {
      const waiting = ((await all(gates)) as Gate[]).filter((g) => g.state === "waiting");
      for (const gate of waiting.sort((a, b) => a.since - b.since)) await ask(gate).catch(report);
    });
    return advancing;
  };
  const report = (err: unknown) => log(`lss github: ${(err as Error).message}`);

  return {
    async requested(req) {
      const rule = ruleFor(req.repositoryId, req.environment);
      const id = sha256Hex(tokenOf(req.repositoryId, req.deploymentId));
      const runLink = `${deps.githubUrl}/${req.repository}/actions/runs/${req.runId}`;
      const gate: Gate = {
        id,
        ...req,
        refs: rule ? rule.keys.map((key) => ({ namespace: rule.namespace, key })) : [],
        rule: rule as GateRule,
        holder: runLink,
        since: now(),
        state: "waiting",
        heldKey: null,
        lastStatus: null,
        statusUpdates: 0,
      };
      if (!rule) {
        await post(gate, "approve", {
          state: "approved",
          comment: `LSS: no gate rule for ${req.repository}'s environment ${req.environment}; approved.`,
        });
        return "no_rule";
      }
      const known = await gates.get(id);
      if (known) return ask(JSON.parse(known) as Gate); // GitHub asking again
      // A deployment whose gate already began: a replayed body (its gate may have ended), not a new ask.
      if (!(await store.claimOnce(`github-gate:${id}`, GATE_MEMORY_MS))) return "ended";
      await gates.put(id, JSON.stringify(gate));
      return ask(gate);
    },

    async completed(job) {
      const ended = ((await all(gates)) as Gate[]).filter(
        (g) =>
          g.repositoryId === job.repositoryId && g.runId === job.runId && g.deploymentId === job.deploymentId,
      );
      for (const gate of ended) await endGate(gate);
      if (ended.length) await advance();
      return ended.length;
    },

    async tick() {
      await advance();
      for (const item of (await all(outbox)) as OutboxItem[]) {
        if (item.nextAt <= now()) await deliver(item).catch(report);
      }
    },

    waiting: async () => ((await all(gates)) as Gate[]).filter((g) => g.state === "waiting"),
    all: async () => (await all(gates)) as Gate[],

    async follow(signal, everyMs = 30_000) {
      while (!signal.aborted) {
        await this.tick().catch(report);
        const waiting = await this.waiting().catch(() => [] as Gate[]);
        const refs = new Map(waiting.flatMap((g) => g.refs).map((r) => [`${r.namespace}\u001f${r.key}`, r]));
        const watches = await Promise.all([...refs.values()].map((r) => store.events.watch(r, signal)));
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          // The first event on any of them, or the tick's time, whichever comes first.
          await Promise.race([
            ...watches.map((w) => w.next(everyMs, signal)),
            new Promise((resolve) => {
              timer = setTimeout(resolve, everyMs);
            }),
          ]);
        } finally {
          clearTimeout(timer);
          for (const w of watches) w.close();
        }
        await pause(20);
      }
    },
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
