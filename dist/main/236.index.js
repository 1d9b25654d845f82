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
