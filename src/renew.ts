import { renewUntilStopped } from "./action/renew-process.js";

await renewUntilStopped();
