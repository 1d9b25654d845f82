#!/usr/bin/env node
import { processTerminal } from "./cli/output.js";
import { main } from "./cli/program.js";

process.exitCode = await main(process.argv, processTerminal());
