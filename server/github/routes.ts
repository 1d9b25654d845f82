/**
 * POST /github/webhook: GitHub's deliveries to the App. Nothing is read before its signature
 * (X-Hub-Signature-256) is checked; a delivery seen before (X-GitHub-Delivery) is answered and
 * ignored; `ping` is answered; deployment_protection_rule `requested` and workflow_job
 * `completed` go to the gates, pull_request and merge_group to the freezes. Any other event is
 * acknowledged and ignored. GET /github/tick runs the scheduler's tick; GET /infra/gates lists gates.
 */
import type { Hono, MiddlewareHandler } from "hono";
import { every, some } from "hono/combine";
import { z } from "zod";
import { type AppEnv, requireScope } from "../auth/middleware.js";
import { may } from "../auth/tokens.js";
import { constantTimeEqual } from "../crypto.js";
import { ApiError } from "../errors.js";
import type { Metrics } from "../metrics.js";
import type { LockStore } from "../stores/types.js";
import type { GitHubApp } from "./app.js";
import { type Gates, gateView, inQueueOrder } from "./gates.js";
import { signedBy } from "./signature.js";

/** GitHub does not redeliver by itself (an operator may, from the App's settings): a week is ample. */
const DELIVERY_MEMORY_MS = 7 * 86_400_000;
/** GitHub caps a payload at 25 MB; the events the App reads are a few kilobytes. */
export const WEBHOOK_MAX_BYTES = 1024 * 1024;

const RUN_OF_CALLBACK = /\/actions\/runs\/(\d+)\/deployment_protection_rule$/;

const repository = z.object({
  id: z.number().int().positive(),
  full_name: z.string().regex(/^(?!.*\.\.)[\w.-]+\/[\w.-]+$/),
});
const protectionRule = z.object({
  action: z.string(),
  environment: z.string().min(1).max(255),
  deployment_callback_url: z
    .string()
    .regex(RUN_OF_CALLBACK, "must end in /actions/runs/{run_id}/deployment_protection_rule"),
  deployment: z.object({ id: z.number().int().positive() }),
  repository,
  installation: z.object({ id: z.number().int().positive() }),
});
const pullRequest = z.object({
  action: z.string(),
  pull_request: z.object({
    number: z.number().int().positive(),
    head: z.object({ sha: z.string().regex(/^[0-9a-f]{40}$/, "must be a commit SHA") }),
    base: z.object({ ref: z.string().min(1).max(255) }),
  }),
  repository,
  installation: z.object({ id: z.number().int().positive() }),
});
const mergeGroup = z.object({
  action: z.string(),
  merge_group: z.object({
    head_sha: z.string().regex(/^[0-9a-f]{40}$/, "must be a commit SHA"),
    base_ref: z.string().min(1).max(255),
  }),
  repository,
  installation: z.object({ id: z.number().int().positive() }),
});
const HANDLED = new Set(["deployment_protection_rule", "workflow_job", "pull_request", "merge_group"]);
/** The pull request actions after which its head or base may be new: its check is posted again. */
const PR_LIVE = new Set(["opened", "synchronize", "reopened", "edited", "ready_for_review"]);
const workflowJob = z.object({
  action: z.string(),
  workflow_job: z.object({ run_id: z.number().int().positive() }),
  repository,
  deployment: z
    .object({ id: z.number().int().positive(), environment: z.string().min(1).max(255) })
    .nullish(),
});

function parsed<T>(schema: z.ZodType<T>, payload: unknown, event: string): T {
  const result = schema.safeParse(payload);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new ApiError(
    "bad_request",
    `${event} payload: ${issue?.path.join(".") || "body"} ${issue?.message ?? "is malformed"}`,
  );
}

export function registerGitHubRoutes(
  app: Hono<AppEnv>,
  deps: {
    store: LockStore;
    github: GitHubApp;
    webhookSecret: string;
    metrics: Pick<Metrics, "githubWebhook"> | null;
  },
) {
  app.post("/github/webhook", async (c) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    const event = c.req.header("X-GitHub-Event") ?? "";
    const count = (outcome: string) => deps.metrics?.githubWebhook(event, outcome);
    if (!signedBy(deps.webhookSecret, body, c.req.header("X-Hub-Signature-256"))) {
      count("unsigned");
      throw new ApiError(
        "unauthorized",
        "X-Hub-Signature-256 does not sign this body with the App's webhook secret",
      );
    }
    const delivery = c.req.header("X-GitHub-Delivery") ?? "";
    if (!/^[A-Za-z0-9-]{1,100}$/.test(delivery)) {
      count("bad_request");
      throw new ApiError("bad_request", "X-GitHub-Delivery is missing or malformed");
    }
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder().decode(body));
    } catch {
      count("bad_request");
      throw new ApiError("bad_request", "the webhook body is not JSON");
    }
    if (event === "ping") {
      count("ping");
      return c.json({ status: "ok", event });
    }
    // Events the App does not act on are not remembered either (a claim each would be a write).
    if (!HANDLED.has(event)) {
      count("ignored");
      return c.json({ status: "ok", event, ignored: `event ${event || "(none)"}` });
    }
    if (!(await deps.store.claimOnce(`github-delivery:${delivery}`, DELIVERY_MEMORY_MS))) {
      count("duplicate");
      return c.json({ status: "ok", event, duplicate: true });
    }
    try {
      const done = await handle(deps.github, event, payload);
      count(String(done.decision ?? (done.released !== undefined ? "released" : (done.check ?? "ignored"))));
      return c.json({ status: "ok", event, ...done });
    } catch (err) {
      if (err instanceof ApiError) count(err.code);
      // Not done: GitHub's redelivery (or a retry) must be handled, not taken for a replay.
      await deps.store.unclaim(`github-delivery:${delivery}`).catch(() => {});
      throw err;
    }
  });
}

/**
 * GET /tick (and, as the App's first releases named it, GET /github/tick): the scheduler's entry
 * point for runtimes without an interval of their own: the GitHub App's gates, freezes and
 * outbox, and the notifications' time-based events and retries. Vercel Cron calls it with
 * `Authorization: Bearer $CRON_SECRET`; any cron may, with an admin token. Safe to call from
 * several places at once.
 */
export function registerTick(
  app: Hono<AppEnv>,
  deps: {
    tick: () => Promise<number | null>;
    cronSecret: string | null;
    adminAuth: MiddlewareHandler<AppEnv>[];
  },
) {
  const cron: MiddlewareHandler<AppEnv> = async (c, next) => {
    const bearer = /^Bearer (.+)$/.exec(c.req.header("Authorization") ?? "")?.[1];
    if (deps.cronSecret === null || bearer === undefined || !constantTimeEqual(bearer, deps.cronSecret))
      throw new ApiError("unauthorized", "not the scheduler's CRON_SECRET");
    await next();
  };
  // The scheduler's secret, or else an admin token as any admin route asks.
  const allowed = some(cron, every(...deps.adminAuth, requireScope("admin")));
  for (const path of ["/tick", "/github/tick"]) {
    app.get(path, allowed, async (c) => {
      const started = Date.now();
      const due = await deps.tick();
      return c.json({
        status: "ok",
        took_ms: Date.now() - started,
        // When calls left in an outbox are next due (a scheduler may come back then).
        next_due: due === null ? null : new Date(due).toISOString(),
      });
    });
  }
}

/**
 * GET /infra/gates: the caller's namespace's gated deployments (?key=: those on one key), waiting
 * first, oldest first.
 */
export function registerGateStatus(app: Hono<AppEnv>, gates: Pick<Gates, "all">) {
  app.get("/infra/gates", requireScope("locks:read"), async (c) => {
    const principal = c.get("principal");
    const key = c.req.query("key");
    const visible = (await gates.all()).filter(
      (g) =>
        g.rule.namespace === principal.namespace &&
        g.refs.every((r) => may(principal, "locks:read", r.key)) &&
        (key === undefined || g.refs.some((r) => r.key === key)),
    );
    return c.json({ status: "ok", gates: inQueueOrder(visible).map(gateView) });
  });
}

async function handle(github: GitHubApp, event: string, payload: unknown): Promise<Record<string, unknown>> {
  if (event === "deployment_protection_rule") {
    const p = parsed(protectionRule, payload, event);
    if (p.action !== "requested") return { ignored: `action ${p.action}` };
    const runId = Number(RUN_OF_CALLBACK.exec(p.deployment_callback_url)?.[1]);
    const decision = await github.gates.requested({
      environment: p.environment,
      runId,
      deploymentId: p.deployment.id,
      repositoryId: p.repository.id,
      repository: p.repository.full_name,
      installationId: p.installation.id,
    });
    return { decision };
  }
  if (event === "workflow_job") {
    const p = parsed(workflowJob, payload, event);
    if (p.action !== "completed" || !p.deployment)
      return { ignored: p.deployment ? `action ${p.action}` : "no environment" };
    const released = await github.gates.completed({
      runId: p.workflow_job.run_id,
      deploymentId: p.deployment.id,
      repositoryId: p.repository.id,
      environment: p.deployment.environment,
    });
    return { released };
  }
  if (event === "pull_request") {
    const p = parsed(pullRequest, payload, event);
    const open = PR_LIVE.has(p.action);
    if (!open && p.action !== "closed") return { ignored: `action ${p.action}` };
    const covered = await github.freeze.seen({
      repositoryId: p.repository.id,
      repository: p.repository.full_name,
      installationId: p.installation.id,
      branch: p.pull_request.base.ref,
      headSha: p.pull_request.head.sha,
      number: p.pull_request.number,
      open,
    });
    return { check: covered ? (open ? "posted" : "forgotten") : "no_freeze" };
  }
  if (event === "merge_group") {
    const p = parsed(mergeGroup, payload, event);
    const open = p.action === "checks_requested";
    if (!open && p.action !== "destroyed") return { ignored: `action ${p.action}` };
    const covered = await github.freeze.seen({
      repositoryId: p.repository.id,
      repository: p.repository.full_name,
      installationId: p.installation.id,
      branch: p.merge_group.base_ref.replace(/^refs\/heads\//, ""),
      headSha: p.merge_group.head_sha,
      number: null,
      open,
    });
    return { check: covered ? (open ? "posted" : "forgotten") : "no_freeze" };
  }
  return { ignored: `event ${event || "(none)"}` };
}
