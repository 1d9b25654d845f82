/** Every route group is an OpenAPIHono with the same validation hook: one 400 shape for bad input. */
import { OpenAPIHono, type RouteConfig, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { ErrorResponse } from "../../src/protocol/common.js";
import type { AppEnv } from "../auth/middleware.js";
import { ApiError, badRequest } from "../errors.js";

type Issue = { path: PropertyKey[]; message: string };
type Target = "query" | "param" | "json";

const where: Record<string, string> = { json: "body", query: "query parameter", param: "path parameter" };

/** Bad input: one 400 in the one error shape, naming each field. */
function invalid(target: string, issues: Issue[]): never {
  const details = issues.map((i) => ({
    in: where[target] ?? target,
    field: i.path.join("."),
    message: i.message,
  }));
  // Field messages name their field already ("ttl_ms must be at least 1").
  const message = `invalid ${where[target] ?? target}: ${details.map((d) => d.message).join("; ")}`;
  throw badRequest(message, { details });
}

/** The hook of routes that bring their own (none do) and of anything else @hono/zod-openapi validates. */
const defaultHook = (result: { success: boolean; error?: unknown; target: string }) => {
  if (!result.success) invalid(result.target, (result.error as { issues: Issue[] }).issues);
};

/** A part of the request by its schema: synchronously (a schema with async checks is awaited). */
function check(target: Target, schema: z.ZodType, value: unknown): unknown {
  let result: ReturnType<z.ZodType["safeParse"]>;
  try {
    result = schema.safeParse(value);
  } catch (err) {
    if (err instanceof z.core.$ZodAsyncError) return checkAsync(target, schema, value);
    throw err;
  }
  return result.success ? result.data : invalid(target, result.error.issues);
}

async function checkAsync(target: Target, schema: z.ZodType, value: unknown): Promise<unknown> {
  const result = await schema.safeParseAsync(value);
  return result.success ? result.data : invalid(target, result.error.issues);
}

// What @hono/zod-openapi's media-type gate and Hono's json validator accept, as they spell it.
const JSON_REQUEST = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** Whether a request without a Content-Type has a body (as @hono/zod-openapi judges it). */
async function hasRequestBody(c: Context): Promise<boolean> {
  const raw = c.req.raw;
  if (raw.body === null) return false;
  if (raw.bodyUsed) return (await c.req.arrayBuffer()).byteLength > 0;
  const body = raw.clone().body;
  if (body === null) return false;
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return false;
      if (value.byteLength > 0) return true;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

async function jsonOf(c: Context): Promise<unknown> {
  const type = c.req.header("Content-Type");
  if (type) {
    if (!JSON_REQUEST.test(type)) throw new HTTPException(415, { message: "Unsupported Media Type" });
  } else if (await hasRequestBody(c)) {
    throw new HTTPException(415, { message: "Unsupported Media Type" });
  }
  const mediaType = type ? (type.split(";")[0] ?? "").trim().toLowerCase() : "";
  if (!JSON_MEDIA_TYPE.test(mediaType)) return {};
  try {
    return await c.req.json();
  } catch {
    throw new HTTPException(400, { message: "Malformed JSON in request body" });
  }
}

/** Gives the handler a part's valid value (c.req.valid); a promise only from a schema with async checks. */
function record(c: Context, target: Target, value: unknown): Promise<void> | undefined {
  if (value instanceof Promise) return value.then((v) => c.req.addValidatedData(target, v as object));
  c.req.addValidatedData(target, value as object);
  return undefined;
}

const queryOf = (c: Context) =>
  Object.fromEntries(Object.entries(c.req.queries()).map(([k, v]) => (v.length === 1 ? [k, v[0]] : [k, v])));

/**
 * A route's validation as ONE middleware, in @hono/zod-openapi's order and with its answers (query,
 * path parameters, the media-type gate, the JSON body), each by its zod schema with a synchronous
 * safeParse. @hono/zod-openapi adds a middleware per part instead, each an async zod parse behind
 * Hono's generic validator. Null when the route needs what only @hono/zod-openapi does (headers,
 * cookies, forms, an optional body).
 */
function mergedValidation(route: RouteConfig): MiddlewareHandler | null {
  const { query, params, headers, cookies, body } = route.request ?? {};
  if (headers || cookies) return null;
  let json: z.ZodType | undefined;
  if (body) {
    const media = body.content["application/json"];
    const schema = media && "schema" in media ? media.schema : undefined;
    if (!body.required || Object.keys(body.content).length !== 1 || !(schema instanceof z.ZodType))
      return null;
    json = schema;
  }
  if (query && !(query instanceof z.ZodType)) return null;
  if (params && !(params instanceof z.ZodType)) return null;
  if (!query && !params && !json) return null;
  return async (c, next) => {
    // check() answers synchronously but for a schema with async checks: await only then.
    if (query) {
      const pending = record(c, "query", check("query", query, queryOf(c)));
      if (pending) await pending;
    }
    if (params) {
      const pending = record(c, "param", check("param", params, c.req.param()));
      if (pending) await pending;
    }
    if (json) {
      const pending = record(c, "json", check("json", json, await jsonOf(c)));
      if (pending) await pending;
    }
    return next();
  };
}

/**
 * How routes validate requests: "merged", one synchronous middleware per route (mergedValidation()), or
 * "stock", @hono/zod-openapi's own. Both give the same answers (test/router.test.ts holds them to
 * it); "merged" is what the server runs, for speed (bench/validation.ts).
 */
export type Validation = "merged" | "stock";

export type Router = OpenAPIHono<AppEnv>;

export const newRouter = (validation: Validation = "merged"): Router => {
  const app = new OpenAPIHono<AppEnv>({ defaultHook });
  if (validation === "stock") return app;
  const openapi = app.openapi;
  // Same registration as @hono/zod-openapi's (the route in the document, then its middleware,
  // validation and handler), with the validation in one middleware (see mergedValidation()).
  app.openapi = ((config, handler, hook) => {
    const { middleware, hide, ...route } = config;
    const validate = hook ? null : mergedValidation(route);
    if (!validate) return openapi(config, handler, hook);
    if (!hide) app.openAPIRegistry.registerPath(route);
    const before = middleware ? (Array.isArray(middleware) ? middleware : [middleware]) : [];
    app.on([route.method], [route.path.replaceAll(/\/{(.+?)}/g, "/:$1")], ...before, validate, handler);
    return app;
  }) as typeof openapi;
  return app;
};

/** An OpenAPI response in the one error shape (every route group describes its errors with it). */
export const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: ErrorResponse } },
});

/** OpenAPI responses of several statuses, each in the one error shape: `[status, description]`. */
export const errorResponses = (...entries: Array<[number, string]>) =>
  Object.fromEntries(entries.map(([status, description]) => [status, errorResponse(description)]));

/** curl -d without a Content-Type sends a form; say so instead of "ttl_ms is required". */
export const jsonBody = createMiddleware<AppEnv>(async (c, next) => {
  const type = c.req.header("Content-Type") ?? "";
  if (!/^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new ApiError(
      "unsupported_media_type",
      "send the body as JSON with 'Content-Type: application/json'",
    );
  }
  return next();
});
