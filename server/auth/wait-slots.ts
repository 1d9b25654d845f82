/**
 * How many waiting requests (wait_ms) one caller — a token, or an address when anonymous — may have
 * open at once on this server instance. Each holds a socket (and, on Upstash, a subscription) for
 * up to LSS_MAX_WAIT_MS: without a cap one caller could starve the process of them.
 */
export interface WaitSlots {
  /** A slot for the caller (call the returned function when its wait ends), or null when it has none left. */
  take(callerId: string): (() => void) | null;
}

export function createWaitSlots(max: number): WaitSlots {
  const open = new Map<string, number>();
  return {
    take(callerId) {
      const used = open.get(callerId) ?? 0;
      if (used >= max) return null;
      open.set(callerId, used + 1);
      let given = false;
      return () => {
        if (given) return;
        given = true;
        const left = (open.get(callerId) ?? 1) - 1;
        if (left <= 0) open.delete(callerId);
        else open.set(callerId, left);
      };
    },
  };
}
