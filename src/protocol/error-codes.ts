/**
 * The error codes of the one error shape and the HTTP status of each, as plain data: the client
 * reads them without loading zod (the action's renewer bundle carries no validator).
 */

export const ERROR_CODES = [
  "bad_request",
  "unauthorized",
  "forbidden",
  "not_found",
  "lock_held",
  "queued",
  "superseded",
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

/** The HTTP status of each error code: the server answers with it, whatever raised the error. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  quota_exceeded: 403,
  not_found: 404,
  lock_held: 409,
  queued: 409,
  superseded: 409,
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

/**
 * How a 401 begins when a server with no OIDC policy is sent a GitHub OIDC token: the action then
 * names the server's setting, not the audience.
 */
export const NO_OIDC_POLICY = "this server accepts no OIDC tokens";
