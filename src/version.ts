/**
 * The version of LSS: of the action, the `lss` package, the client and the server alike. Written
 * by scripts/release.mjs (npm run release) together with package.json's; test/release.test.ts keeps the two equal.
 */
export const VERSION = "1.0.0";
