/** A port that was free a moment ago on 127.0.0.1 (never 6379, where a shared Redis may listen). */
import { createServer } from "node:net";

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.unref();
      probe.once("error", reject);
      probe.listen(0, "127.0.0.1", () => {
        const address = probe.address();
        const found = typeof address === "object" && address ? address.port : 0;
        probe.close(() => resolve(found));
      });
    });
    if (port !== 6379 && port !== 0) return port;
  }
}
