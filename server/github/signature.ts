/**
 * GitHub's webhook signature (X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>) and
 * the secrets derived from the webhook secret, in a form every runtime has (@noble/hashes).
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { constantTimeEqual } from "../crypto.js";

export const hmacHex = (secret: string, data: Uint8Array | string) =>
  bytesToHex(hmac(sha256, utf8ToBytes(secret), typeof data === "string" ? utf8ToBytes(data) : data));

/** Whether `header` signs `body` with `secret`, compared in constant time. */
export function signedBy(secret: string, body: Uint8Array, header: string | undefined): boolean {
  const match = /^sha256=([0-9a-f]{64})$/.exec(header ?? "");
  if (!match?.[1]) return false;
  return constantTimeEqual(hmacHex(secret, body), match[1]);
}
