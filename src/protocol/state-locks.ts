/**
 * Wire format of the Lock State Service API (`/locks`): query parameters as the document gives
 * them (`l`, `e`, `k`), state as the HTTP status (204 unlocked, 423 locked, 404 unknown).
 */
import { z } from "zod";
import { printable, textSchema } from "./common.js";
import { STATE_LOCK_ID_RULE } from "./fields.js";

/** State locks live in the lease API's key space under this prefix: lock `abc` is lease key `locks/abc`. */
export const STATE_LOCK_KEY_PREFIX = "locks/";

export const StateLockId = textSchema(STATE_LOCK_ID_RULE);

/** `l=true|1|T` locks at creation; `false|0|F` or absent leaves it unlocked. */
export const LockedFlag = z
  .enum(["true", "1", "T", "false", "0", "F"], { error: "l must be one of true, 1, T (or false, 0, F)" })
  .transform((v) => v === "true" || v === "1" || v === "T");

/** `e`: seconds the locked state lasts; absent = until unlocked. */
export const TtlSeconds = z
  .string()
  .regex(/^\d+$/, "e must be a whole number of seconds")
  .transform(Number)
  .pipe(
    z
      .number()
      .min(1, "e must be at least 1 second")
      .max(1_000_000_000, "e must be at most 1000000000 seconds"),
  );

/** `k`: the lock's own credential. Chosen by the creator or generated. */
export const LockCredential = printable("k", 256, 1);

export const CreateQuery = z.object({
  l: LockedFlag.optional(),
  e: TtlSeconds.optional(),
  k: LockCredential.optional(),
});
export const LockQuery = z.object({ k: LockCredential.optional(), e: TtlSeconds.optional() });
export const UnlockQuery = z.object({ k: LockCredential.optional() });

export const CreatedResponse = z.object({
  id: z.string(),
  key: z.string(),
  locked: z.boolean(),
  expires_at: z.string().nullable(),
  /** The original service's names for id, key and locked, so that existing scripts keep working. */
  lockId: z.string(),
  lockKey: z.string(),
  isLocked: z.boolean(),
});
export type CreatedResponse = z.infer<typeof CreatedResponse>;
