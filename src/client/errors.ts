/** What the client throws: the server's error code and message, or why the server could not be asked. */
import { ERROR_CODES, type ErrorCode } from "../protocol/error-codes.js";

/** Why the client could not get an answer of the server's own (no code from the server). */
export type ClientErrorCode =
  | "unreachable"
  | "bad_response"
  | "bad_token"
  | "token_unavailable"
  | "unavailable"
  | "http_error";

export type LssErrorCode = ErrorCode | ClientErrorCode;

const KNOWN = new Set<string>(ERROR_CODES);

/** The error code of a server's answer, when it is one of the protocol's; else `fallback`. */
export const codeOf = (body: Record<string, unknown> | null, fallback: ClientErrorCode): LssErrorCode => {
  const code = (body?.error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && KNOWN.has(code) ? (code as ErrorCode) : fallback;
};

export class LssError extends Error {
  override name = "LssError";
  constructor(
    /** The server's error code (lock_held, not_held, unauthorized, …), or why there is none. */
    readonly code: LssErrorCode,
    message: string,
    /** HTTP status, when the server answered. */
    readonly status: number | null = null,
    readonly body: Record<string, unknown> | null = null,
  ) {
    super(message);
  }
}
