/** Every route group is an OpenAPIHono with the same validation hook: one 400 shape for bad input. */
import { OpenAPIHono } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { ErrorResponse } from "../../src/protocol/common.js";
import type { AppEnv } from "../auth/middleware.js";
import { ApiError, badRequest } from "../errors.js";

type Issue = { path: PropertyKey[]; message: string };

const where: Record<string, string> = { json: "body", query: "query parameter", param: "path parameter" };

export const newRouter = () =>
  new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      const issues = (result.error as { issues: Issue[] }).issues;
      const details = issues.map((i) => ({
        in: where[result.target] ?? result.target,
        field: i.path.join("."),
        message: i.message,
      }));
      // Field messages name their field already ("ttl_ms must be at least 1").
      const message = `invalid ${where[result.target] ?? result.target}: ${details.map((d) => d.message).join("; ")}`;
      throw badRequest(message, { details });
    },
  });

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
