/**
 * The namespace's webhook subscriptions, for admins: POST /infra/webhooks (the secret is in this
 * answer only), GET /infra/webhooks (never a secret), DELETE /infra/webhooks/{id}.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { PATHS } from "../../src/protocol/paths.js";
import { requireScope } from "../auth/middleware.js";
import { ApiError, badRequest } from "../errors.js";
import { errorResponse, jsonBody, type Router } from "../routes/router.js";
import type { Notifier } from "./notifier.js";
import { webhookUrlProblem } from "./ssrf.js";
import {
  MAX_SUBSCRIPTIONS,
  newSecret,
  newSubscriptionId,
  SubscribeRequest,
  type Subscription,
  subscriptionView,
} from "./subscriptions.js";

const SubscriptionView = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  key_pattern: z.string().nullable(),
  format: z.enum(["json", "slack"]),
  held_longer_than_ms: z.number().int().nullable(),
  queue_longer_than_ms: z.number().int().nullable(),
  created_at: z.string(),
});
const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** A threshold without its event, or the event without its threshold, is a mistake worth naming. */
function thresholdProblem(req: SubscribeRequest): { field: string; message: string } | null {
  const pairs = [
    ["held_longer_than", "held_longer_than_ms"],
    ["queue_longer_than", "queue_longer_than_ms"],
  ] as const;
  for (const [event, field] of pairs) {
    const wants = req.events.includes(event);
    if (wants && req[field] === undefined)
      return { field, message: `${field} is needed with event ${event}` };
    if (!wants && req[field] !== undefined)
      return { field, message: `${field} needs event ${event} in events` };
  }
  return null;
}

/**
 * A new subscription of the namespace (the API's and the dashboard's): its URL by the SSRF rule,
 * its thresholds with their events, at most MAX_SUBSCRIPTIONS; an ApiError says why not.
 */
export async function subscribe(
  notifier: Notifier,
  namespace: string,
  req: SubscribeRequest,
  allowPrivate: boolean,
): Promise<Subscription> {
  const urlProblem = webhookUrlProblem(req.url, allowPrivate);
  const problem = urlProblem ? { field: "url", message: urlProblem } : thresholdProblem(req);
  if (problem)
    throw badRequest(`invalid body: ${problem.message}`, { details: [{ in: "body", ...problem }] });
  if ((await notifier.subscriptions.of(namespace)).length >= MAX_SUBSCRIPTIONS)
    throw new ApiError(
      "quota_exceeded",
      `namespace "${namespace}" already has ${MAX_SUBSCRIPTIONS} webhook subscriptions, the most it may have`,
      { extra: { limit: "webhooks", max: MAX_SUBSCRIPTIONS } },
    );
  const sub: Subscription = {
    id: newSubscriptionId(),
    namespace,
    // As the URL parser reads it (what is checked is what is posted to).
    url: new URL(req.url).href,
    events: [...new Set(req.events)],
    keyPattern: req.key_pattern ?? null,
    format: req.format ?? "json",
    secret: newSecret(),
    heldLongerThanMs: req.held_longer_than_ms ?? null,
    queueLongerThanMs: req.queue_longer_than_ms ?? null,
    createdAt: new Date().toISOString(),
  };
  await notifier.subscriptions.put(sub);
  return sub;
}

export function registerWebhookRoutes(app: Router, notifier: Notifier, opts: { allowPrivate: boolean }) {
  const admin = [requireScope("admin")];
  const create = createRoute({
    method: "post",
    path: PATHS.webhooks,
    tags: ["Notifications"],
    summary: "Subscribe a URL to the namespace's lock events (the secret is shown once)",
    middleware: [...admin, jsonBody],
    request: { body: { required: true, content: { "application/json": { schema: SubscribeRequest } } } },
    responses: {
      201: json(SubscriptionView.extend({ status: z.literal("ok"), secret: z.string() }), "Subscribed"),
      400: errorResponse("Invalid request"),
      403: errorResponse("Not an admin, or too many subscriptions"),
    },
  });
  const list = createRoute({
    method: "get",
    path: PATHS.webhooks,
    tags: ["Notifications"],
    summary: "The namespace's webhook subscriptions (never their secrets)",
    middleware: admin,
    responses: {
      200: json(z.object({ status: z.literal("ok"), webhooks: z.array(SubscriptionView) }), "Subscriptions"),
    },
  });
  const remove = createRoute({
    method: "delete",
    path: PATHS.webhook,
    tags: ["Notifications"],
    summary: "Unsubscribe (instances stop delivering to it within 10 s)",
    middleware: admin,
    request: {
      params: z.object({ id: z.string().regex(/^[0-9a-f]{16}$/, "webhook id must be 16 hex digits") }),
    },
    responses: {
      200: json(z.object({ status: z.literal("ok"), id: z.string(), deleted: z.literal(true) }), "Deleted"),
      404: errorResponse("No such subscription"),
    },
  });

  return app
    .openapi(create, async (c) => {
      const sub = await subscribe(
        notifier,
        c.get("principal").namespace,
        c.req.valid("json"),
        opts.allowPrivate,
      );
      return c.json({ status: "ok" as const, ...subscriptionView(sub), secret: sub.secret }, 201);
    })
    .openapi(list, async (c) => {
      const subs = await notifier.subscriptions.of(c.get("principal").namespace);
      subs.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      return c.json({ status: "ok" as const, webhooks: subs.map(subscriptionView) }, 200);
    })
    .openapi(remove, async (c) => {
      const { id } = c.req.valid("param");
      if (!(await notifier.subscriptions.delete(c.get("principal").namespace, id)))
        throw new ApiError("not_found", `no webhook subscription with id ${id}`);
      return c.json({ status: "ok" as const, id, deleted: true as const }, 200);
    });
}
