import { runMain } from "./action/main.js";
import { mainDeps } from "./action/runtime.js";

await runMain(mainDeps());
