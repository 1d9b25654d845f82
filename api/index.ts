export { default } from "../server/vercel.js";
