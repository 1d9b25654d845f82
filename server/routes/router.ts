/** Every route group is an OpenAPIHono with the same validation hook: one 400 shape for bad input. */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../auth/middleware.js";
import { badRequest } from "../errors.js";

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
