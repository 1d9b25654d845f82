export const id = 606;
export const ids = [606];
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

/***/ 606:
/***/ ((__unused_webpack_module, __webpack_exports__, __webpack_require__) => {

__webpack_require__.r(__webpack_exports__);
/* harmony export */ __webpack_require__.d(__webpack_exports__, {
/* harmony export */   AcquireRequest: () => (/* binding */ AcquireRequest),
/* harmony export */   ERROR_CODES: () => (/* reexport safe */ _common_js__WEBPACK_IMPORTED_MODULE_0__.OQ),
/* harmony export */   ErrorResponse: () => (/* reexport safe */ _common_js__WEBPACK_IMPORTED_MODULE_0__._p),
/* harmony export */   GrantResponse: () => (/* binding */ GrantResponse),
/* harmony export */   HISTORY_EVENTS: () => (/* binding */ HISTORY_EVENTS),
/* harmony export */   HistoryEvent: () => (/* binding */ HistoryEvent),
/* harmony export */   HistoryEventKind: () => (/* binding */ HistoryEventKind),
/* harmony export */   HistoryResponse: () => (/* binding */ HistoryResponse),
/* harmony export */   HolderId: () => (/* binding */ HolderId),
/* harmony export */   HolderLimit: () => (/* binding */ HolderLimit),
/* harmony export */   HolderLimitText: () => (/* binding */ HolderLimitText),
/* harmony export */   INVISIBLE_FORMATTING: () => (/* reexport safe */ _fields_js__WEBPACK_IMPORTED_MODULE_1__.y$),
/* harmony export */   KEY_PATTERN: () => (/* reexport safe */ _fields_js__WEBPACK_IMPORTED_MODULE_1__.bn),
/* harmony export */   LeaseToken: () => (/* binding */ LeaseToken),
/* harmony export */   LeaseView: () => (/* binding */ LeaseView),
/* harmony export */   LeaveRequest: () => (/* binding */ LeaveRequest),
/* harmony export */   ListResponse: () => (/* binding */ ListResponse),
/* harmony export */   LockKey: () => (/* binding */ LockKey),
/* harmony export */   LockMode: () => (/* binding */ LockMode),
/* harmony export */   LockSummary: () => (/* binding */ LockSummary),
/* harmony export */   MAX_HOLDERS: () => (/* reexport safe */ _fields_js__WEBPACK_IMPORTED_MODULE_1__.JG),
/* harmony export */   MAX_POOL_KEYS: () => (/* reexport safe */ _fields_js__WEBPACK_IMPORTED_MODULE_1__.zP),
/* harmony export */   PoolKeys: () => (/* binding */ PoolKeys),
/* harmony export */   Reason: () => (/* binding */ Reason),
/* harmony export */   ReleaseRequest: () => (/* binding */ ReleaseRequest),
/* harmony export */   ReleaseResponse: () => (/* binding */ ReleaseResponse),
/* harmony export */   RenewRequest: () => (/* binding */ RenewRequest),
/* harmony export */   StatusResponse: () => (/* binding */ StatusResponse),
/* harmony export */   TtlMs: () => (/* binding */ TtlMs),
/* harmony export */   WaitMs: () => (/* binding */ WaitMs),
/* harmony export */   keysOf: () => (/* reexport safe */ _fields_js__WEBPACK_IMPORTED_MODULE_1__.YD),
/* harmony export */   printable: () => (/* reexport safe */ _common_js__WEBPACK_IMPORTED_MODULE_0__.g$),
/* harmony export */   strictBody: () => (/* reexport safe */ _common_js__WEBPACK_IMPORTED_MODULE_0__.uY)
/* harmony export */ });
/* harmony import */ var zod__WEBPACK_IMPORTED_MODULE_2__ = __webpack_require__(818);
/* harmony import */ var _common_js__WEBPACK_IMPORTED_MODULE_0__ = __webpack_require__(419);
/* harmony import */ var _fields_js__WEBPACK_IMPORTED_MODULE_1__ = __webpack_require__(59);
/**
 * Wire format of the lease API (`/infra/locks/{key}/…`), shared by the server and the typed client
 * so that the two cannot drift. Limits follow the lease API document; the upper TTL bound is a
 * server setting (LSS_MAX_TTL_MS) and is applied by the server on top of these schemas.
 */





const LockKey = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .textSchema */ .Zu)(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .KEY_RULE */ .Z3);
const HolderId = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .textSchema */ .Zu)(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .HOLDER_ID_RULE */ .S_);
const LeaseToken = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .textSchema */ .Zu)(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .LEASE_TOKEN_RULE */ .CH);
const Reason = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .textSchema */ .Zu)(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .REASON_RULE */ .qk);
const TtlMs = zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig({ error: "ttl_ms must be an integer number of milliseconds" })
    .int("ttl_ms must be an integer number of milliseconds")
    .min(1, "ttl_ms must be at least 1");
const WaitMs = zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig({ error: "wait_ms must be an integer number of milliseconds" })
    .int("wait_ms must be an integer number of milliseconds")
    .min(0, "wait_ms must be at least 0");
const LockMode = zod__WEBPACK_IMPORTED_MODULE_2__/* ["enum"] */ .k5n(["exclusive", "shared"], { error: "mode must be exclusive or shared" });
const HolderLimit = zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig({ error: `limit must be a whole number from 1 to ${_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .MAX_HOLDERS */ .JG}` })
    .int(`limit must be a whole number from 1 to ${_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .MAX_HOLDERS */ .JG}`)
    .min(1, "limit must be at least 1")
    .max(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .MAX_HOLDERS */ .JG, `limit must be at most ${_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .MAX_HOLDERS */ .JG}`);
/** A limit as a command line or a workflow writes it: digits (one message for every mistake). */
const HolderLimitText = zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP()
    .regex(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .LIMIT_TEXT_PATTERN */ .ZJ, _fields_js__WEBPACK_IMPORTED_MODULE_1__/* .LIMIT_RANGE */ .gM)
    .transform(Number)
    .pipe(zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().min(1, _fields_js__WEBPACK_IMPORTED_MODULE_1__/* .LIMIT_RANGE */ .gM).max(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .MAX_HOLDERS */ .JG, _fields_js__WEBPACK_IMPORTED_MODULE_1__/* .LIMIT_RANGE */ .gM));
const AcquireRequest = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .strictBody */ .uY)({
    /** Wait in the key's queue up to this long (bounded by the server); needs your own token. */
    wait_ms: WaitMs.optional(),
    ttl_ms: TtlMs,
    holder_id: HolderId.optional(),
    /** Client-chosen lease token: a retried acquire with the same token returns the same lease. */
    token: LeaseToken.optional(),
    reason: Reason.optional(),
    /** exclusive (the default): the only holder; shared: one of up to `limit` holders. */
    mode: LockMode.optional(),
    /** How many may hold it at once (implies shared); every shared holder must count the same. */
    limit: HolderLimit.optional(),
});
/** A pool: several keys, of which an acquire gets whichever frees first. */
const PoolKeys = zod__WEBPACK_IMPORTED_MODULE_2__/* .array */ .YOg(LockKey, { error: "keys must be a list of lock names" })
    .min(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.min.min, _fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.min.message)
    .max(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.max.max, _fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.max.message)
    .refine((keys) => _fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.repeated(keys) === undefined, {
    error: (issue) => _fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.repeatedMessage(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.repeated(issue.input)),
})
    .refine(_fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.stateLock.test, { message: _fields_js__WEBPACK_IMPORTED_MODULE_1__/* .POOL_CHECKS */ .bX.stateLock.message });
const RenewRequest = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .strictBody */ .uY)({ token: LeaseToken, ttl_ms: TtlMs });
/** `token` releases your lease; `force: true` (admin scope) releases whoever holds the key. */
const ReleaseRequest = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .strictBody */ .uY)({
    token: LeaseToken.optional(),
    force: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz(true, { error: "force must be true (or left out)" }).optional(),
}).refine((r) => (r.token === undefined) !== (r.force === undefined), {
    message: "send either token (your lease's) or force: true (admin only), not both",
});
/** What anyone may see of a lease: never its token. Times are ISO 8601 by the store's clock. */
const LeaseView = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    /** exclusive or shared (absent from older servers: exclusive). */
    mode: LockMode.optional(),
    holder_id: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    reason: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    fencing_token: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int(),
    acquired_at: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    /** null: held until released (only status locks of the /locks API can be held forever). */
    expires_at: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    /** Remaining time by the store's clock, so that waiting clients need not trust their own. */
    expires_in_ms: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int().nullable(),
});
const GrantResponse = LeaseView.extend({
    status: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz("ok"),
    key: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    locked: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz(true),
    token: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
});
/** holder_id: who gives up waiting, for the key's history (a queue timeout). */
const LeaveRequest = (0,_common_js__WEBPACK_IMPORTED_MODULE_0__/* .strictBody */ .uY)({ token: LeaseToken, holder_id: HolderId.optional() });
/** A key's holder as a status or a listing shows it: all null when the key is free. */
const HeldFields = {
    holder_id: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    reason: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    fencing_token: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int().nullable(),
    acquired_at: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    expires_at: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    expires_in_ms: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int().nullable(),
};
const StatusResponse = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    status: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz("ok"),
    key: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    locked: zod__WEBPACK_IMPORTED_MODULE_2__/* .boolean */ .zMY(),
    ...HeldFields,
    /** How many wait in the key's queue. */
    waiting: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int(),
    /** exclusive, shared, or null when free. */
    mode: LockMode.nullable().optional(),
    /** With shared holders: how many may hold it at once. */
    limit: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int().nullable().optional(),
    /** Every holder (never a token); the top-level fields describe the one whose lease ends last. */
    holders: zod__WEBPACK_IMPORTED_MODULE_2__/* .array */ .YOg(LeaseView).optional(),
    /** The first waiters, in order: the mode each waits for. */
    queue: zod__WEBPACK_IMPORTED_MODULE_2__/* .array */ .YOg(zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({ position: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int(), mode: LockMode })).optional(),
});
const ReleaseResponse = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    status: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz("ok"),
    key: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    locked: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz(false),
});
/** What a key's history records (see HistoryEvent). */
const HISTORY_EVENTS = [
    "granted",
    "extended",
    "released",
    "expired",
    "forced_release",
    "queue_timeout",
];
const HistoryEventKind = zod__WEBPACK_IMPORTED_MODULE_2__/* ["enum"] */ .k5n(HISTORY_EVENTS);
/**
 * One event of a key's history. granted: a lease began; extended: its holder acquired again with
 * the same token (a renewal, the heartbeat of a running job, is not recorded); released, expired,
 * forced_release: a lease ended (held_ms says how long it was held; an expiry is written when the
 * key is next acquired, at the time the lease ended); queue_timeout: a waiter gave up (its holder_id
 * when it said it) or stopped asking. actor: the API token that did it, by id and name, never its
 * secret (null for an expiry). run_url: the workflow run, when the holder id names one.
 */
const HistoryEvent = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    event: HistoryEventKind,
    at: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    holder_id: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    reason: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
    mode: LockMode.nullable(),
    fencing_token: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int().nullable(),
    held_ms: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int().nullable(),
    actor: zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({ token_id: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(), token_name: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable() }).nullable(),
    run_url: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
});
/** Newest first; next_cursor fetches the older events (null: no more). */
const HistoryResponse = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    status: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz("ok"),
    key: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    events: zod__WEBPACK_IMPORTED_MODULE_2__/* .array */ .YOg(HistoryEvent),
    next_cursor: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
});
/** A key of the namespace at a glance (the listing): what its status says, in brief. */
const LockSummary = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    key: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP(),
    locked: zod__WEBPACK_IMPORTED_MODULE_2__/* .boolean */ .zMY(),
    mode: LockMode.nullable(),
    /** The holder whose lease ends last (of a shared key: one of `holders`). */
    ...HeldFields,
    /** How many hold it now (0 when free). */
    holders: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int(),
    waiting: zod__WEBPACK_IMPORTED_MODULE_2__/* .number */ .aig().int(),
    /** A status lock of the /locks API (key `locks/<id>`). */
    registered: zod__WEBPACK_IMPORTED_MODULE_2__/* .boolean */ .zMY(),
    run_url: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
});
/** Keys in order; next_cursor asks for the keys after the last one (null: no more). */
const ListResponse = zod__WEBPACK_IMPORTED_MODULE_2__/* .object */ .Ikc({
    status: zod__WEBPACK_IMPORTED_MODULE_2__/* .literal */ .euz("ok"),
    locks: zod__WEBPACK_IMPORTED_MODULE_2__/* .array */ .YOg(LockSummary),
    next_cursor: zod__WEBPACK_IMPORTED_MODULE_2__/* .string */ .YjP().nullable(),
});


/***/ })

};
