/** What the client throws: the server's error code and message, or why the server could not be asked. */
export class LssError extends Error {
  override name = "LssError";
  constructor(
    /** The server's error code (lock_held, not_held, unauthorized, …), or "unreachable" / "bad_response". */
    readonly code: string,
    message: string,
    /** HTTP status, when the server answered. */
    readonly status: number | null = null,
    readonly body: Record<string, unknown> | null = null,
  ) {
    super(message);
  }
}
