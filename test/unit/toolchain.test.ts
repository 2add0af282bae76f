// toolchain/install.sh puts our command provider, which stands in for upstream's
// under the same name and version, into pullsnap's own PULUMI_HOME, and leaves
// an operator's Pulumi home (upstream plugin, login, workspaces) byte for byte
// as it was (issue 9). It runs the real install.sh as an operator whose home is
// a temp dir, but with the real caches, so only its "already in place" checks
// run: a few seconds. The CLI finds ~/.pulumi through the user database, not
// $HOME, so the operator's home is changed in both: a private mount namespace
// (unshare) binds a copy of /etc/passwd over it.
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO_DIR = path.resolve(__dirname, "..", "..");
const INSTALL = path.join(REPO_DIR, "toolchain/install.sh");
const CACHE = process.env.PULLSNAP_CACHE ?? path.join(os.homedir(), ".cache/pullsnap");
const PULLSNAP_PULUMI_HOME = path.join(CACHE, "pulumi-home");
const PLUGIN_VERSION: string = JSON.parse(fs.readFileSync(path.join(REPO_DIR, "node_modules/@pulumi/command/package.json"), "utf8")).pulumi
    .version;
const PLUGIN = `plugins/resource-command-v${PLUGIN_VERSION}/pulumi-resource-command`;
// Go looks for its caches under HOME; a rebuild after an edit must reuse the real ones.
const GO_ENV = ["GOCACHE", "GOMODCACHE", "GOPATH", "GOENV"];

/** An operator's Pulumi home: an upstream plugin as `pulumi plugin install` leaves it, a login and a workspace. */
function fakePulumiHome(dir: string): void {
    const files: Record<string, string> = {
        [PLUGIN]: "#!/bin/sh\necho 'upstream pulumi-resource-command'\n",
        [`plugins/resource-command-v${PLUGIN_VERSION}/LICENSE`]: "Apache License 2.0\n",
        [`plugins/resource-command-v${PLUGIN_VERSION}.lock`]: "",
        "credentials.json": '{"current":"https://api.pulumi.com","accessTokens":{"https://api.pulumi.com":"pul-0000"}}\n',
        "workspaces/pullsnap-0123-workspace.json": '{"stack":"prod"}\n',
    };
    for (const [rel, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), content, { mode: rel === PLUGIN ? 0o755 : 0o644 });
    }
}

/** Every entry under dir, with its mode and, for a file, the sha256 of its content. */
function manifest(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const rel of fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).sort()) {
        const p = path.join(dir, rel);
        const st = fs.lstatSync(p);
        const mode = (st.mode & 0o7777).toString(8);
        out[rel] = st.isFile()
            ? `${mode} ${createHash("sha256").update(fs.readFileSync(p)).digest("hex")}`
            : `${mode} ${st.isDirectory() ? "dir" : "other"}`;
    }
    return out;
}

function sha256(file: string): string {
    return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** /etc/passwd with root's home moved to `home`. */
function passwdWithRootHome(home: string, dir: string): string {
    const lines = fs
        .readFileSync("/etc/passwd", "utf8")
        .split("\n")
        .map((l) => {
            const f = l.split(":");
            if (f[2] === "0") f[5] = home;
            return f.join(":");
        });
    const file = path.join(dir, "passwd");
    fs.writeFileSync(file, lines.join("\n"));
    return file;
}

// In the namespace: bind the passwd copy, check it is what the user database now says, run the command.
const AS_OPERATOR = 'mount --bind "$1" /etc/passwd && shift && [ "$(getent passwd 0 | cut -d: -f6)" = "$HOME" ] && exec "$@"';
// Without root, a user namespace maps us to root (install.sh insists on root for the lab).
const UNSHARE = process.getuid?.() === 0 ? ["--mount"] : ["--user", "--map-root-user", "--mount"];

describe("toolchain/install.sh", () => {
    const goEnv: NodeJS.ProcessEnv = {};
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-toolchain-"));

    beforeAll(() => {
        // Cold, install.sh would run `npm ci`, which wipes the node_modules this test runs from.
        const stamp = path.join(REPO_DIR, "node_modules/.pullsnap-lock-hash");
        const lock = sha256(path.join(REPO_DIR, "package-lock.json")).slice(0, 16);
        if (!fs.existsSync(stamp) || fs.readFileSync(stamp, "utf8").trim() !== lock) {
            throw new Error("node_modules is not what install.sh last installed: run `bash toolchain/install.sh` first");
        }
        const go = spawnSync("go", ["env", ...GO_ENV], {
            encoding: "utf8",
            env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
        });
        if (go.status !== 0) throw new Error(`go env (is Go in /usr/local/go or on PATH?): ${go.error?.message ?? go.stderr}`);
        const values = go.stdout.split("\n");
        GO_ENV.forEach((name, i) => (goEnv[name] = values[i]));
    });

    afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

    /** Runs a command as an operator whose home is `home`, with the real caches. */
    function asOperator(home: string, pulumiHome: string | undefined, cmd: string, args: string[]) {
        const env: NodeJS.ProcessEnv = { ...process.env, ...goEnv, HOME: home, PULLSNAP_CACHE: CACHE };
        delete env.PULUMI_HOME;
        if (pulumiHome) env.PULUMI_HOME = pulumiHome;
        const passwd = passwdWithRootHome(home, fs.mkdtempSync(path.join(scratch, "etc-")));
        const r = spawnSync("unshare", [...UNSHARE, "sh", "-c", AS_OPERATOR, "sh", passwd, cmd, ...args], {
            cwd: REPO_DIR,
            encoding: "utf8",
            env,
        });
        if (r.error) throw r.error;
        expect(r.status, `${cmd} ${args.join(" ")}:\n${r.stdout}${r.stderr}`).toBe(0);
        return r.stdout;
    }

    it.each([
        { case: "PULUMI_HOME unset: ~/.pulumi", operatorHome: ".pulumi", exported: false },
        { case: "PULUMI_HOME set to the operator's own", operatorHome: "pulumi-operator", exported: true },
    ])("leaves the operator's Pulumi home as it was ($case)", { timeout: 300_000 }, ({ operatorHome, exported }) => {
        const home = fs.mkdtempSync(path.join(scratch, "home-"));
        const pulumiHome = path.join(home, operatorHome);
        fakePulumiHome(pulumiHome);
        const before = manifest(pulumiHome);

        asOperator(home, exported ? pulumiHome : undefined, "bash", [INSTALL]);

        expect(manifest(pulumiHome)).toEqual(before);
        // Ours is in pullsnap's home, and env.sh points the CLI there.
        const tools = asOperator(home, exported ? pulumiHome : undefined, "bash", [
            "-c",
            'source toolchain/env.sh && printf "%s\\n%s\\n" "$PULLSNAP_TOOLS_DIR" "$PULUMI_HOME"',
        ]).split("\n");
        expect(tools[1]).toBe(PULLSNAP_PULUMI_HOME);
        expect(sha256(path.join(PULLSNAP_PULUMI_HOME, PLUGIN))).toBe(sha256(path.join(tools[0], "provider/pulumi-resource-command")));
        expect(manifest(pulumiHome)).toEqual(before);
    });

    it("creates no ~/.pulumi, and the CLI finds our provider in pullsnap's home", { timeout: 300_000 }, () => {
        const home = fs.mkdtempSync(path.join(scratch, "home-"));
        asOperator(home, undefined, "bash", [INSTALL]);
        // HOME has no Pulumi home, so the CLI can only have found it in ours.
        const plugins: { name: string; kind: string; version: string }[] = JSON.parse(
            asOperator(home, undefined, "bash", ["-c", "source toolchain/env.sh && pulumi plugin ls --json"]),
        );
        expect(plugins.filter((p) => p.name === "command")).toEqual([
            expect.objectContaining({ kind: "resource", version: PLUGIN_VERSION }),
        ]);
        expect(fs.readdirSync(home)).toEqual([]);
    });
});
