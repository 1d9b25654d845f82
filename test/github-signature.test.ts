/**
 * The webhook signature against GitHub's own documented example (the emulator signs with the
 * same function, so only a known vector can catch a wrong HMAC), in both of its implementations.
 */
import { describe, expect, it } from "vitest";
import { hmacHex, signedBy } from "../server/github/signature.js";

// docs.github.com, "Validating webhook deliveries": this secret and payload give this signature.
const SECRET = "It's a Secret to Everybody";
const PAYLOAD = "Hello, World!";
const SIGNATURE = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

describe("X-Hub-Signature-256", () => {
  it("is GitHub's HMAC-SHA256 of the body", () => {
    expect(hmacHex(SECRET, PAYLOAD)).toBe(SIGNATURE);
    expect(hmacHex(SECRET, new TextEncoder().encode(PAYLOAD))).toBe(SIGNATURE);
  });

  it("accepts the body it signs and nothing else", () => {
    const body = new TextEncoder().encode(PAYLOAD);
    expect(signedBy(SECRET, body, `sha256=${SIGNATURE}`)).toBe(true);
    expect(signedBy(SECRET, new TextEncoder().encode(`${PAYLOAD} `), `sha256=${SIGNATURE}`)).toBe(false);
    expect(signedBy(`${SECRET}!`, body, `sha256=${SIGNATURE}`)).toBe(false);
    expect(signedBy(SECRET, body, SIGNATURE)).toBe(false); // no "sha256="
    expect(signedBy(SECRET, body, `sha1=${SIGNATURE}`)).toBe(false);
    expect(signedBy(SECRET, body, undefined)).toBe(false);
  });
});
