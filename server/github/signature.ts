/**
 * GitHub's webhook signature (X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>) and
 * the secrets derived from the webhook secret. node:crypto's HMAC where the runtime has it (Node,
 * Vercel, Workers with nodejs_compat): an unauthenticated route hashes up to a megabyte, which
 * @noble/hashes (the fallback) takes 8 ms of CPU for.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { constantTimeEqual } from "../crypto.js";

type Hmac = { update(data: Uint8Array | string): Hmac; digest(encoding: "hex"): string };
const nodeHmac = (() => {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const mod = proc?.getBuiltinModule?.("node:crypto") as
    | { createHmac?: (algorithm: string, key: string) => Hmac }
    | undefined;
  return typeof mod?.createHmac === "function" ? mod.createHmac : null;
})();

export const hmacHex = (secret: string, data: Uint8Array | string): string =>
  nodeHmac
    ? nodeHmac("sha256", secret).update(data).digest("hex")
    : bytesToHex(hmac(sha256, utf8ToBytes(secret), typeof data === "string" ? utf8ToBytes(data) : data));

/** Whether `header` signs `body` with `secret`, compared in constant time. */
export function signedBy(secret: string, body: Uint8Array, header: string | undefined): boolean {
  const match = /^sha256=([0-9a-f]{64})$/.exec(header ?? "");
  if (!match?.[1]) return false;
  return constantTimeEqual(hmacHex(secret, body), match[1]);
}
