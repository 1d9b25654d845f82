/**
 * What every part of the wire format shares: text fields, strict bodies, and the one error shape
 * with its codes and the HTTP status of each (one table, used by the server to answer and by the
 * client to read).
 */
import { z } from "zod";
import { ERROR_CODES } from "./error-codes.js";
import { printableRule, type TextRule } from "./fields.js";

export { ERROR_CODES, ERROR_STATUS, type ErrorCode } from "./error-codes.js";

/** The zod schema of a text field's rules (fields.ts), checked in their order. */
export function textSchema(rule: TextRule) {
  let schema = rule.notString ? z.string({ error: rule.notString }) : z.string();
  for (const check of rule.checks) {
    schema =
      "min" in check
        ? schema.min(check.min, check.message)
        : "max" in check
          ? schema.max(check.max, check.message)
          : "pattern" in check
            ? schema.regex(check.pattern, check.message)
            : (schema.refine(check.test, { message: check.message }) as unknown as z.ZodString);
  }
  return schema;
}

/** Printable text without control characters (holder ids, reasons, tokens, lock keys, names). */
export const printable = (field: string, max: number, min = 0) => textSchema(printableRule(field, max, min));

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

/** Every error, from every route. `holder_id` etc. accompany `lock_held` so a waiter can say whom it waits for. */
export const ErrorResponse = z
  .object({
    status: z.literal("error"),
    error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }),
  })
  .catchall(z.unknown());
