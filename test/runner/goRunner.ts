// The Go program that replaces the Bash runner, server/cmd/pullsnap, built the
// way a deploy will build it, so that black-box tests can run it beside the Bash runner.
import * as path from "node:path";
import { must, run } from "./harness";

export const SERVER_DIR = path.resolve(__dirname, "../../server");

/** The go command: on PATH after `source toolchain/env.sh`, else where the toolchain installs it. */
async function goCommand(): Promise<string> {
    return (await run("go", ["version"])).code === 0 ? "go" : "/usr/local/go/bin/go";
}

/** Builds the program into dir (static, -trimpath, no VCS stamp) and returns the binary's path. */
export async function buildGoRunner(dir: string): Promise<string> {
    const binary = path.join(dir, "pullsnap");
    await must(await goCommand(), ["build", "-trimpath", "-buildvcs=false", "-o", binary, "./cmd/pullsnap"], {
        cwd: SERVER_DIR,
        env: { ...process.env, CGO_ENABLED: "0" },
    });
    return binary;
}
