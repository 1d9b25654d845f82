/** The one error type of the server and the one JSON shape every error is sent in. */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorCode } from "../src/protocol/lease.js";

export class ApiError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    /** Extra top-level fields of the body (e.g. the holder of a lock that is held). */
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(status, { message });
  }
}

export const errorBody = (code: ErrorCode, message: string, extra: Record<string, unknown> = {}) => ({
  status: "error" as const,
  error: { code, message },
  ...extra,
});

export const badRequest = (message: string, extra?: Record<string, unknown>) =>
  new ApiError(400, "bad_request", message, extra);
