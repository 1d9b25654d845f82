export const id = 236;
export const ids = [236];
export const modules = {

/***/ 419:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   OQ: () => (/* reexport safe */ _error_codes_js__WEBPACK_IMPORTED_MODULE_0__.O),
/* harmony export */   Zu: () => (/* binding */ textSchema),
/* harmony export */   _p: () => (/* binding */ ErrorResponse),
/* harmony export */   g$: () => (/* binding */ printable),
/* harmony export */   uY: () => (/* binding */ strictBody)
/* harmony export */ });
/* harmony import */ var zod__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(818);
/* harmony import */ var _error_codes_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(757);
/* harmony import */ var _fields_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(59);
/**
 * What every part of the wire format shares: text fields, strict bodies, and the one error shape
 * with its codes and the HTTP status of each (one table, used by the server to answer and by the
 * client to read).
 */




/** The zod schema of a text field's rules (fields.ts), checked in their order. */
function textSchema(rule) {
    let schema = rule.notString ? zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP({ error: rule.notString }) : zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP();
    for (const check of rule.checks) {
        schema =
            "min" in check
                ? schema.min(check.min, check.message)
                : "max" in check
                    ? schema.max(check.max, check.message)
                    : "pattern" in check
                        ? schema.regex(check.pattern, check.message)
                        : schema.refine(check.test, { message: check.message });
    }
    return schema;
}
/** Printable text without control characters (holder ids, reasons, tokens, lock keys, names). */
const printable = (field, max, min = 0) => textSchema((0,_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .printableRule */ .o6)(field, max, min));
/** Unknown fields are rejected by name, so a typo such as `ttl` for `ttl_ms` is not silently ignored. */
const strictBody = (shape) => zod__WEBPACK_IMPORTED_MODULE_2__/* .strictObject */ .rej(shape, {
    error: (issue) => issue.code === "unrecognized_keys"
        ? `unknown field(s): ${issue.keys.join(", ")}`
        : issue.code === "invalid_type"
            ? "the body must be a JSON object"
            : undefined,
});
/** Every error, from every route. `holder_id` etc. accompany `lock_held` so a waiter can say whom it waits for. */
const ErrorResponse = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    status: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz("error"),
    error: zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({ code: zod__WEBPACK_IMPORTED_MODULE_2__/* ["enum"] */ .k5n(_error_codes_js__WEBPACK_IMPORTED_MODULE_0__/* .ERROR_CODES */ .O), message: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP() }),
})
    .catchall(zod__WEBPACK_IMPORTED_MODULE_2__/* .unknown */ .L5J());


/***/ }),

/***/ 59:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   CH: () => (/* binding */ LEASE_TOKEN_RULE),
/* harmony export */   JG: () => (/* binding */ MAX_HOLDERS),
/* harmony export */   S_: () => (/* binding */ HOLDER_ID_RULE),
/* harmony export */   YD: () => (/* binding */ keysOf),
/* harmony export */   Z3: () => (/* binding */ KEY_RULE),
/* harmony export */   ZJ: () => (/* binding */ LIMIT_TEXT_PATTERN),
/* harmony export */   bX: () => (/* binding */ POOL_CHECKS),
/* harmony export */   bn: () => (/* binding */ KEY_PATTERN),
/* harmony export */   gM: () => (/* binding */ LIMIT_RANGE),
/* harmony export */   hv: () => (/* binding */ STATE_LOCK_ID_RULE),
/* harmony export */   o6: () => (/* binding */ printableRule),
/* harmony export */   qk: () => (/* binding */ REASON_RULE),
/* harmony export */   y$: () => (/* binding */ INVISIBLE_FORMATTING),
/* harmony export */   zP: () => (/* binding */ MAX_POOL_KEYS)
/* harmony export */ });
/* unused harmony exports textProblem, shownRule, limitTextProblem, poolProblem */
/**
 * The rules of the wire format's text fields (lock keys, holder ids, reasons, lease tokens, /locks
 * ids, pools, holder limits), written once as plain data: the zod schemas of lease.ts, common.ts
 * and state-locks.ts are built from them, and the action checks its inputs with `textProblem` (and its kin)
 * without loading zod (which would cost every step's start-up tens of milliseconds). A check is
 * applied in the order given and the first that fails is the problem, as zod's first issue.
 */
/** The first check the text fails, as its message; null when it passes them all. */
function textProblem(rule, text) {
    for (const check of rule.checks) {
        const ok = "min" in check
            ? text.length >= check.min
            : "max" in check
                ? text.length <= check.max
                : "pattern" in check
                    ? check.pattern.test(text)
                    : check.test(text);
        if (!ok)
            return check.message;
    }
    return null;
}
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const NO_CONTROL_CHARACTERS = /^[^\x00-\x1f\x7f]*$/;
/** Printable text without control characters (holder ids, reasons, tokens, lock keys, names). */
const printableRule = (field, max, min = 0) => ({
    notString: `${field} must be a string`,
    checks: [
        { min, message: `${field} must be at least ${min} character${min === 1 ? "" : "s"}` },
        { max, message: `${field} must be at most ${max} characters` },
        { pattern: NO_CONTROL_CHARACTERS, message: `${field} must not contain control characters` },
    ],
});
/**
 * Invisible and bidirectional formatting characters: in a holder id or reason shown to other jobs
 * and people, they can make text read as something else (a reordered name, a hidden part).
 */
const INVISIBLE_FORMATTING = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;
/** Printable text that others will read: also without invisible or bidirectional formatting. */
const shownRule = (field, max) => ({
    notString: printableRule(field, max).notString,
    checks: [
        ...printableRule(field, max).checks,
        {
            test: (text) => !INVISIBLE_FORMATTING.test(text),
            message: `${field} must not contain invisible or bidirectional formatting characters (such as U+200B or U+202E)`,
        },
    ],
});
/** 1–512 chars, no control characters, no "..": the document's pattern, verbatim. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const KEY_PATTERN = /^(?!.*\.\.)[^\x00-\x1f\x7f]+$/;
const KEY_RULE = {
    checks: [
        { min: 1, message: "key must not be empty" },
        { max: 512, message: "key must be at most 512 characters" },
        { pattern: KEY_PATTERN, message: 'key must not contain control characters or ".."' },
    ],
};
const HOLDER_ID_RULE = shownRule("holder_id", 256);
const REASON_RULE = shownRule("reason", 512);
const LEASE_TOKEN_RULE = printableRule("token", 256, 1);
const STATE_LOCK_ID_RULE = {
    checks: [
        { pattern: /^[A-Za-z0-9_-]{1,128}$/, message: "lock id must be 1–128 letters, digits, '_' or '-'" },
    ],
};
/** The most holders a shared key admits; a shared hold without a limit admits this many. */
const MAX_HOLDERS = 100;
const LIMIT_RANGE = `limit must be a whole number from 1 to ${MAX_HOLDERS}`;
/** A limit as a command line or a workflow writes it: digits from 1 to MAX_HOLDERS (one message for every mistake). */
const LIMIT_TEXT_PATTERN = /^\d+$/;
function limitTextProblem(text) {
    if (!LIMIT_TEXT_PATTERN.test(text))
        return LIMIT_RANGE;
    const n = Number(text);
    return n >= 1 && n <= MAX_HOLDERS ? null : LIMIT_RANGE;
}
/** The most keys one pool may name. */
const MAX_POOL_KEYS = 10;
/** The keys of a target written as text: one key, or a pool as keys separated by commas (qa-1, qa-2). */
const keysOf = (text) => text.split(",").map((k) => k.trim());
/** A pool's rules on its list of keys, after each key's own (KEY_RULE). */
const POOL_CHECKS = {
    min: { min: 2, message: "keys must name at least 2 keys (one key: acquire it directly)" },
    max: { max: MAX_POOL_KEYS, message: `keys must name at most ${MAX_POOL_KEYS} keys` },
    /** The first key named twice, if any. */
    repeated: (keys) => keys.find((k, i) => keys.indexOf(k) !== i),
    repeatedMessage: (key) => `keys must not repeat ("${key}" is named twice)`,
    stateLock: {
        test: (keys) => !keys.some((k) => k.startsWith("locks/")),
        message: "a lock of the /locks API cannot be in a pool",
    },
};
/** The first problem of a pool's keys (a key's own first, as zod reports them), or null. */
function poolProblem(keys) {
    for (const key of keys) {
        const problem = textProblem(KEY_RULE, key);
        if (problem)
            return problem;
    }
    if (keys.length < POOL_CHECKS.min.min)
        return POOL_CHECKS.min.message;
    if (keys.length > POOL_CHECKS.max.max)
        return POOL_CHECKS.max.message;
    const twice = POOL_CHECKS.repeated(keys);
    if (twice !== undefined)
        return POOL_CHECKS.repeatedMessage(twice);
    if (!POOL_CHECKS.stateLock.test(keys))
        return POOL_CHECKS.stateLock.message;
    return null;
}


/***/ }),

/***/ 236:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   CreateQuery: () => (/* binding */ CreateQuery),
/* harmony export */   CreatedResponse: () => (/* binding */ CreatedResponse),
/* harmony export */   LockCredential: () => (/* binding */ LockCredential),
/* harmony export */   LockQuery: () => (/* binding */ LockQuery),
/* harmony export */   LockedFlag: () => (/* binding */ LockedFlag),
/* harmony export */   STATE_LOCK_KEY_PREFIX: () => (/* binding */ STATE_LOCK_KEY_PREFIX),
/* harmony export */   StateLockId: () => (/* binding */ StateLockId),
/* harmony export */   TtlSeconds: () => (/* binding */ TtlSeconds),
/* harmony export */   UnlockQuery: () => (/* binding */ UnlockQuery)
/* harmony export */ });
/* harmony import */ var zod__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(818);
/* harmony import */ var _common_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(419);
/* harmony import */ var _fields_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(59);
/**
 * Wire format of the Lock State Service API (`/locks`): query parameters as the document gives
 * them (`l`, `e`, `k`), state as the HTTP status (204 unlocked, 423 locked, 404 unknown).
 */



/** State locks live in the lease API's key space under this prefix: lock `abc` is lease key `locks/abc`. */
const STATE_LOCK_KEY_PREFIX = "locks/";
const StateLockId = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .textSchema */ .Zu)(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .STATE_LOCK_ID_RULE */ .hv);
/** `l=true|1|T` locks at creation; `false|0|F` or absent leaves it unlocked. */
const LockedFlag = zod__WEBPACK_IMPORTED_MODULE_2__/* ["enum"] */ .k5n(["true", "1", "T", "false", "0", "F"], { error: "l must be one of true, 1, T (or false, 0, F)" })
    .transform((v) => v === "true" || v === "1" || v === "T");
/** `e`: seconds the locked state lasts; absent = until unlocked. */
const TtlSeconds = zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP()
    .regex(/^\d+$/, "e must be a whole number of seconds")
    .transform(Number)
    .pipe(zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig()
    .min(1, "e must be at least 1 second")
    .max(1_000_000_000, "e must be at most 1000000000 seconds"));
/** `k`: the lock's own credential. Chosen by the creator or generated. */
const LockCredential = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .printable */ .g$)("k", 256, 1);
const CreateQuery = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    l: LockedFlag.optional(),
    e: TtlSeconds.optional(),
    k: LockCredential.optional(),
});
const LockQuery = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({ k: LockCredential.optional(), e: TtlSeconds.optional() });
const UnlockQuery = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({ k: LockCredential.optional() });
const CreatedResponse = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    id: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    key: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    locked: zod__WEBPACK_IMPORTED_MODULE_2__/* .boolean */ .zMY(),
    expires_at: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    /** The original service's names for id, key and locked, so that existing scripts keep working. */
    lockId: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    lockKey: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    isLocked: zod__WEBPACK_IMPORTED_MODULE_2__/* .boolean */ .zMY(),
});


/***/ })

};
