/**
 * The one error type of the server and the one JSON shape every error is sent in. An error is
 * named by its code; its HTTP status comes from the protocol's one table (ERROR_STATUS).
 */
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ERROR_STATUS, type ErrorCode } from "../src/protocol/common.js";

export class ApiError extends HTTPException {
  /** Extra top-level fields of the body (e.g. the holder of a lock that is held). */
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: { extra?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(ERROR_STATUS[code] as ContentfulStatusCode, { message });
    this.extra = opts.extra ?? {};
    this.headers = opts.headers ?? {};
  }
}

/** The code of a status raised by something else than an ApiError (hono's own exceptions). */
export const codeOfStatus = (status: number): ErrorCode =>
  (Object.entries(ERROR_STATUS).find(([, s]) => s === status)?.[0] as ErrorCode | undefined) ?? "bad_request";

export const errorBody = (code: ErrorCode, message: string, extra: Record<string, unknown> = {}) => ({
  status: "error" as const,
  error: { code, message },
  ...extra,
});

export const badRequest = (message: string, extra?: Record<string, unknown>) =>
  new ApiError("bad_request", message, { extra });
