/**
 * What every part of the wire format shares: text fields, strict bodies, and the one error shape
 * with its codes and the HTTP status of each (one table, used by the server to answer and by the
 * client to read).
 */
import { z } from "zod";

// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const NO_CONTROL_CHARACTERS = /^[^\x00-\x1f\x7f]*$/;

/** Printable text without control characters (holder ids, reasons, tokens, lock keys, names). */
export const printable = (field: string, max: number, min = 0) =>
  z
    .string({ error: `${field} must be a string` })
    .min(min, `${field} must be at least ${min} character${min === 1 ? "" : "s"}`)
    .max(max, `${field} must be at most ${max} characters`)
    .regex(NO_CONTROL_CHARACTERS, `${field} must not contain control characters`);

/** Unknown fields are rejected by name, so a typo such as `ttl` for `ttl_ms` is not silently ignored. */
export const strictBody = <T extends z.ZodRawShape>(shape: T) =>
  z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown field(s): ${issue.keys.join(", ")}`
        : issue.code === "invalid_type"
          ? "the body must be a JSON object"
          : undefined,
  });

export const ERROR_CODES = [
  "bad_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "lock_held",
  "queued",
  "not_held",
  "payload_too_large",
  "unsupported_media_type",
  "rate_limited",
  "store_unavailable",
  "outcome_unknown",
  "limit_mismatch",
  "mode_conflict",
  "quota_exceeded",
  "misconfigured",
  "issuer_unavailable",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Every error, from every route. `holder_id` etc. accompany `lock_held` so a waiter can say whom it waits for. */
export const ErrorResponse = z
  .object({
    status: z.literal("error"),
    error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }),
  })
  .catchall(z.unknown());

/** The HTTP status of each error code: the server answers with it, whatever raised the error. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  quota_exceeded: 403,
  not_found: 404,
  lock_held: 409,
  queued: 409,
  not_held: 409,
  limit_mismatch: 409,
  mode_conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  misconfigured: 500,
  store_unavailable: 503,
  outcome_unknown: 503,
  issuer_unavailable: 503,
} as const satisfies Record<ErrorCode, number>;
