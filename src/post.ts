import { runPost } from "./action/post.js";
import { postDeps } from "./action/runtime.js";

await runPost(postDeps());
