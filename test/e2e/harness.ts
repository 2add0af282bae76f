// Drives the real thing for end-to-end tests: the QEMU lab, the Pulumi CLI on
// a throwaway file backend, and shell commands on the lab VMs.
import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const REPO_DIR = path.resolve(__dirname, "..", "..");
const LAB = path.join(REPO_DIR, "lab", "lab");

export interface Result {
    status: number;
    stdout: string;
    stderr: string;
}

function finish(r: SpawnSyncReturns<string>, what: string): Result {
    if (r.error) {
        throw new Error(`${what}: ${r.error.message}`);
    }
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A lab on its own ports and state dir, so tests never collide with the demo's. */
export class Lab {
    readonly env: NodeJS.ProcessEnv;

    constructor(portBase: number) {
        const state = path.join(process.env.PULLSNAP_CACHE ?? path.join(os.homedir(), ".cache", "pullsnap"), "lab", `test-${portBase}`);
        this.env = { ...process.env, PULLSNAP_LAB_PORT_BASE: String(portBase), PULLSNAP_LAB_STATE: state };
    }

    run(...args: string[]): Result {
        return finish(spawnSync(LAB, args, { encoding: "utf8", env: this.env, maxBuffer: 64 << 20 }), `lab ${args.join(" ")}`);
    }

    up(): void {
        const r = spawnSync(LAB, ["up"], { encoding: "utf8", env: this.env, stdio: ["ignore", "inherit", "inherit"] });
        if (r.status !== 0) {
            throw new Error(`lab up failed with ${r.status}`);
        }
    }

    down(): void {
        this.run("down");
    }

    /** Runs a bash script as root on a VM, in one SSH session. */
    sh(vm: "backup" | "main", script: string): Result {
        return finish(
            spawnSync(LAB, ["ssh", vm, "bash", "-s"], { input: script, encoding: "utf8", env: this.env, maxBuffer: 64 << 20 }),
            `ssh ${vm}`,
        );
    }

    /** Like sh, but fails the test with the output when the script fails. */
    ok(vm: "backup" | "main", script: string): string {
        const r = this.sh(vm, script);
        if (r.status !== 0) {
            throw new Error(`script on ${vm} exited ${r.status}\n--- script\n${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
        }
        return r.stdout;
    }

    config(): { privateKeyFile: string; backup: Record<string, unknown>; main: Record<string, unknown> } {
        return JSON.parse(this.run("config").stdout);
    }
}

/** A Pulumi stack of this project on a file backend in a temp dir. */
export class Stack {
    readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-stack-"));
    readonly env: NodeJS.ProcessEnv;

    constructor(
        readonly name: string,
        extraEnv: NodeJS.ProcessEnv = {},
    ) {
        fs.mkdirSync(path.join(this.dir, "state"));
        this.env = {
            ...process.env,
            ...extraEnv,
            PULUMI_BACKEND_URL: `file://${path.join(this.dir, "state")}`,
            PULUMI_CONFIG_PASSPHRASE: "e2e-passphrase",
            // pullsnap's own Pulumi home, as toolchain/env.sh sets it: our command
            // provider is installed there, never in the operator's ~/.pulumi.
            PULUMI_HOME: path.join(process.env.PULLSNAP_CACHE ?? path.join(os.homedir(), ".cache", "pullsnap"), "pulumi-home"),
            PULUMI_SKIP_UPDATE_CHECK: "true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        };
    }

    /** Stack config lives in the temp dir, not in the repository. */
    get configFile(): string {
        return path.join(this.dir, `Pulumi.${this.name}.yaml`);
    }

    pulumi(...args: string[]): Result {
        return finish(
            spawnSync(
                "pulumi",
                [...args, "--stack", this.name, "--config-file", this.configFile, "--non-interactive", "--color", "never"],
                {
                    cwd: REPO_DIR,
                    encoding: "utf8",
                    env: this.env,
                    maxBuffer: 64 << 20,
                },
            ),
            `pulumi ${args.join(" ")}`,
        );
    }

    init(): void {
        const r = spawnSync("pulumi", ["stack", "init", this.name, "--non-interactive"], {
            cwd: REPO_DIR,
            encoding: "utf8",
            env: this.env,
        });
        if (r.status !== 0) {
            throw new Error(`stack init: ${r.stderr}`);
        }
        // stack init writes the passphrase salt beside Pulumi.yaml; keep the repository clean.
        const written = path.join(REPO_DIR, `Pulumi.${this.name}.yaml`);
        fs.copyFileSync(written, this.configFile);
        fs.rmSync(written);
    }

    /** Points the stack at a running lab (lab/configure-stack). */
    configureForLab(lab: Lab): void {
        // The stack's backend and the lab's ports must win over any the calling shell may have set.
        const { PULLSNAP_LAB_PORT_BASE, PULLSNAP_LAB_STATE } = lab.env;
        const r = spawnSync(path.join(REPO_DIR, "lab", "configure-stack"), [this.name, "--config-file", this.configFile], {
            env: { ...this.env, PULLSNAP_LAB_PORT_BASE, PULLSNAP_LAB_STATE },
            encoding: "utf8",
        });
        if (r.status !== 0) {
            throw new Error(`configure-stack: ${r.stderr}`);
        }
    }

    /** Every file of the state backend, concatenated: for secret scans. */
    stateText(): string {
        const out: string[] = [];
        const walk = (dir: string) => {
            for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
                const p = path.join(dir, entry.name);
                if (entry.isDirectory()) walk(p);
                else out.push(fs.readFileSync(p, "latin1"));
            }
        };
        walk(path.join(this.dir, "state"));
        return out.join("\n");
    }

    remove(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}
