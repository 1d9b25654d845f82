/**
 * The `lss` package's client (import … from "lss"): the typed client for both APIs, waiting and
 * renewal as the action and the CLI do them, the errors it throws, and the answers' types.
 */

export type { ErrorCode } from "../protocol/error-codes.js";
export type {
  GrantResponse,
  HistoryEvent,
  HistoryResponse,
  ListResponse,
  LockSummary,
  StatusResponse,
} from "../protocol/lease.js";
export type { CreatedResponse } from "../protocol/state-locks.js";
export { VERSION } from "../version.js";
export {
  type AcquireOptions,
  type AcquireParams,
  type AcquireResult,
  type CallOptions,
  type ClientOptions,
  createClient,
  type HeldLease,
  type LockTarget,
  type LssClient,
  newToken,
  releaseAny,
  type StateLockState,
  type TokenProvider,
} from "./client.js";
export { type ClientErrorCode, LssError, type LssErrorCode } from "./errors.js";
export {
  type Lost,
  type Renewed,
  type RenewLoopOptions,
  type RenewStatus,
  renewEvery,
  renewLoop,
} from "./renew-loop.js";
export { CLIENT_PRODUCT } from "./transport.js";
export {
  LONG_POLL_MS,
  type WaitOptions,
  type WaitProgress,
  type WaitResult,
  type WaitTarget,
  waitFor,
} from "./wait.js";
