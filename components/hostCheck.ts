// Drift detection for one host. @pulumi/command never reads a host, so this
// dynamic resource does: on every `pulumi preview` it runs the host's check
// script over one SSH session and compares the report with the one the host
// printed right after provisioning. Each drifted item becomes a property of
// the preview's diff, and `pulumi up` repairs by re-running the host's
// idempotent provisioning scripts.
import { createHash } from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { stepReport } from "./hostConnection";
import { hostFile, renderScript } from "./remoteScript";

/** Which parts of the backup server a check covers: each step checks its own. */
export interface ServerCheckParts {
    readonly runner?: boolean;
    readonly mountPoint?: string;
    readonly maintenance?: boolean;
    readonly jobs?: string[];
}

/** Reports what the backup server's steps manage (check-server.sh); HostCheck compares it on every preview. */
export function checkServerScript(parts: ServerCheckParts): string {
    return renderScript({
        vars: {
            CHECK_RUNNER: parts.runner ? "1" : "",
            MOUNT_POINT: parts.mountPoint ?? "",
            CHECK_MAINTENANCE: parts.maintenance ? "1" : "",
            JOBS: parts.jobs ?? [],
        },
        files: { CHECK_LIB: hostFile("lib/check.sh") },
        script: hostFile("backup-server/check-server.sh"),
    });
}

/** A step's part of the backup server's check: what it left on the host and how to redo it. */
export interface CheckedStep {
    /** The step's check report, printed right after it ran. */
    readonly report: pulumi.Output<string>;
    /** The step's whole script, its check included, with its stdin (repairCommand); re-running it repairs. */
    readonly script: pulumi.Output<string>;
}

/**
 * One line of a repair: a step's command fed its stdin as the step got it, with
 * its own output sent to stderr (the check's report is the session's stdout).
 */
export function repairCommand(create: string, stdin?: string): string {
    // A step is "script && check": the braces give both the redirections, not just the check.
    if (stdin === undefined || stdin === "") {
        return `{ ${create}; } </dev/null >&2`;
    }
    const text = stdin.endsWith("\n") ? stdin : `${stdin}\n`;
    const delimiter = `PULLSNAP_STDIN_${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
    return `{ ${create}; } >&2 <<'${delimiter}'\n${text}${delimiter}`;
}

/**
 * The report and repair command of a remote step that ran with a check. The
 * stdin comes from the program, not the step's outputs: in a preview an output
 * the provider did not echo is unknown, and the check would always show a change.
 */
export function checkedStep(step: command.remote.Command, stdin?: pulumi.Input<string>): CheckedStep {
    return {
        report: stepReport(step),
        script: pulumi.all([step.create, stdin]).apply(([create, input]) => repairCommand(create ?? "", input)),
    };
}

/** A check report: item -> value, parsed from `key<TAB>value` lines. */
export type Report = Record<string, string>;

/** Parses a check script's report; a repeated key is a bug in the script. */
export function parseReport(text: string): Report {
    const report: Report = {};
    for (const line of text.split("\n")) {
        if (line === "") continue;
        const tab = line.indexOf("\t");
        const key = tab < 0 ? line : line.slice(0, tab);
        if (key in report) {
            throw new Error(`check report repeats the item ${JSON.stringify(key)}`);
        }
        report[key] = tab < 0 ? "" : line.slice(tab + 1);
    }
    return report;
}

/** Joins the reports of several steps on one host into the report the whole check prints. */
export function joinReports(reports: string[]): string {
    return reports.filter((r) => r !== "").join("\n");
}

/** What differs between the expected and the observed report: item -> "host has X; expected Y". */
export function driftOf(expected: Report, observed: Report): Record<string, string> {
    const drift: Record<string, string> = {};
    for (const key of [...new Set([...Object.keys(expected), ...Object.keys(observed)])].sort()) {
        if (expected[key] !== observed[key]) {
            drift[key] =
                `host has ${JSON.stringify(observed[key] ?? "(nothing)")}; expected ${JSON.stringify(expected[key] ?? "(nothing)")}`;
        }
    }
    return drift;
}

/** The inputs the program sets; `check` adds the drifted items beside them. */
const TRACKED = ["host", "port", "user", "privateKey", "hostKey", "checkScript", "repairScripts", "expected"];

interface HostCheckInputs {
    host: string;
    port: number;
    user: string;
    privateKey: string;
    hostKey: string;
    checkScript: string;
    repairScripts: string[];
    expected: string;
    drifted?: string[];
    [item: string]: unknown;
}

// Everything below runs in the dynamic provider's own process: Pulumi
// serializes these functions with what they capture, so they require the
// modules they use inside their bodies.

/** Runs a script on the host in one SSH session, the script on stdin, and returns stdout. */
async function runOnHost(inputs: HostCheckInputs, script: string): Promise<string> {
    // Serialized into the provider's process: modules must be required inside.
    /* eslint-disable @typescript-eslint/no-require-imports */
    const childProcess = require("child_process") as typeof import("child_process");
    const fs = require("fs") as typeof import("fs");
    const os = require("os") as typeof import("os");
    const path = require("path") as typeof import("path");
    /* eslint-enable @typescript-eslint/no-require-imports */
    const where = `${inputs.user}@${inputs.host}:${inputs.port}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-check-"));
    try {
        if (!inputs.hostKey) {
            throw new Error(`no pinned host key for ${where}: refusing to connect to a host that cannot be verified`);
        }
        const keyFile = path.join(dir, "key");
        fs.writeFileSync(keyFile, inputs.privateKey.endsWith("\n") ? inputs.privateKey : `${inputs.privateKey}\n`, { mode: 0o600 });
        // Only the pinned key: ssh trusts nothing it finds elsewhere and learns nothing new.
        const knownHosts = path.join(dir, "known_hosts");
        const address = inputs.port === 22 ? inputs.host : `[${inputs.host}]:${inputs.port}`;
        fs.writeFileSync(knownHosts, `${address} ${inputs.hostKey}\n`, { mode: 0o600 });
        const args = [
            "-F", "/dev/null",
            "-i", keyFile,
            "-p", String(inputs.port),
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", `UserKnownHostsFile=${knownHosts}`,
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "UpdateHostKeys=no",
            "-o", "CheckHostIP=no",
            "-o", "ConnectTimeout=20",
            "-o", "ServerAliveInterval=15",
            "-l", inputs.user,
            inputs.host,
            "bash -s",
        ]; // prettier-ignore
        return await new Promise<string>((resolve, reject) => {
            const child = childProcess.spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
            child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
            child.on("error", (e) => reject(new Error(`cannot check host ${where}: ${e.message}`)));
            child.on("close", (code) => {
                if (code === 0) {
                    resolve(stdout);
                } else if (code === 255) {
                    reject(new Error(`cannot reach host ${where} over SSH to check it for drift: ${stderr.trim().split("\n").pop()}`));
                } else {
                    reject(new Error(`checking host ${where} failed with exit code ${code}:\n${stderr.trim()}`));
                }
            });
            child.stdin.end(script);
        });
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Runs the check and returns the drifted items, or throws if the host is unreachable. */
async function observe(inputs: HostCheckInputs, prelude = ""): Promise<Record<string, string>> {
    const out = await runOnHost(inputs, `${prelude}${inputs.checkScript}\n`);
    const line = out
        .trim()
        .split("\n")
        .reverse()
        .find((l) => l.startsWith('{"report":'));
    if (line === undefined) {
        throw new Error(`the check on ${inputs.host}:${inputs.port} printed no report:\n${out}`);
    }
    const observed = parseReport((JSON.parse(line) as { report: string }).report);
    return driftOf(parseReport(inputs.expected), observed);
}

/** Runs the repair scripts then the check in one session; fails naming what is still drifted. */
async function repair(inputs: HostCheckInputs): Promise<void> {
    // Each line is a repairCommand: its own stdout goes to stderr, its stdin is its own.
    const repairs = inputs.repairScripts.map((s) => `${s}\n`).join("");
    let drift: Record<string, string>;
    try {
        drift = await observe(inputs, `set -e\n${repairs}`);
    } catch (e) {
        throw new Error(`repairing ${inputs.host}:${inputs.port} failed: ${(e as Error).message}`);
    }
    if (Object.keys(drift).length > 0) {
        throw new Error(
            `${inputs.host}:${inputs.port} still drifts after repair:\n${Object.entries(drift)
                .map(([k, v]) => `  ${k}: ${v}`)
                .join("\n")}`,
        );
    }
}

function tracked(inputs: HostCheckInputs): Record<string, unknown> {
    const outs: Record<string, unknown> = {};
    for (const key of TRACKED) {
        outs[key] = inputs[key];
    }
    return { ...outs, drifted: [] };
}

const hostCheckProvider: pulumi.dynamic.ResourceProvider = {
    /** Runs the check on every preview and up; drifted items become properties, so the diff names them. */
    async check(olds: HostCheckInputs, news: HostCheckInputs) {
        // The engine's placeholder for a value a preview cannot know yet.
        const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
        const inputs: HostCheckInputs = { ...news, drifted: [] };
        // The engine shows a diff of old and new inputs, and the old ones keep the items of
        // earlier drift: carry them over unchanged so that only what drifts now shows.
        for (const [key, value] of Object.entries(olds ?? {})) {
            if (!TRACKED.includes(key) && key !== "drifted" && !key.startsWith("__")) {
                inputs[key] = value;
            }
        }
        const known = ["host", "port", "user", "privateKey", "checkScript", "expected"].every(
            (k) => news[k] !== unknown && news[k] !== undefined,
        );
        // Before the steps have run (or while they will re-run), there is nothing to compare against.
        if (!known) {
            return { inputs };
        }
        let drift: Record<string, string>;
        try {
            drift = await observe(news);
        } catch (e) {
            // A check failure is reported as the message alone; a thrown error comes with a stack trace.
            return { inputs, failures: [{ property: "host", reason: (e as Error).message }] };
        }
        // The time makes a repeated drift of the same item show as a change too.
        const at = new Date().toISOString().replace(/\.\d+Z$/, "Z");
        for (const [item, what] of Object.entries(drift)) {
            inputs[item] = `${what} (checked ${at})`;
        }
        inputs.drifted = Object.keys(drift);
        return { inputs };
    },

    async diff(_id: string, olds: HostCheckInputs, news: HostCheckInputs) {
        const changed = TRACKED.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
        const drifted = news.drifted ?? [];
        return { changes: changed.length > 0 || drifted.length > 0 };
    },

    async create(inputs: HostCheckInputs) {
        // The remote steps did the work; only repair what the check found off.
        if ((inputs.drifted ?? []).length > 0) {
            await repair(inputs);
        }
        return { id: `${inputs.host}:${inputs.port}`, outs: tracked(inputs) };
    },

    async update(_id: string, _olds: HostCheckInputs, news: HostCheckInputs) {
        if ((news.drifted ?? []).length > 0) {
            await repair(news);
        }
        return { outs: tracked(news) };
    },

    /** Serves `pulumi refresh`: records what drifted, which the next preview then repairs. */
    async read(id: string, props: HostCheckInputs) {
        const drift = await observe(props);
        return { id, props: { ...props, ...drift, drifted: Object.keys(drift) } };
    },
};

export interface HostCheckArgs {
    /** How the check reaches the host: the connection the remote steps use. */
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** The check script, rendered by renderScript; prints {"report": "..."}. */
    readonly checkScript: pulumi.Input<string>;
    /** The host's provisioning steps as repairCommand lines, in order; re-running them is the repair. */
    readonly repairScripts: pulumi.Input<string>[];
    /** The report the host printed right after provisioning. */
    readonly expected: pulumi.Input<string>;
}

/**
 * Reads one host on every preview and names each item that differs from what
 * provisioning left there; `pulumi up` re-runs the provisioning to repair it.
 * `pulumi destroy` has nothing to undo on the host.
 */
export class HostCheck extends pulumi.dynamic.Resource {
    /** Items that drifted at the last check; empty once `up` repaired them. */
    declare public readonly drifted: pulumi.Output<string[]>;

    constructor(name: string, args: HostCheckArgs, opts?: pulumi.CustomResourceOptions) {
        const connection = pulumi.output(args.connection);
        // Only the key is secret; the rest must stay readable in the preview.
        const plain = <T>(pick: (c: pulumi.Unwrap<command.types.input.remote.ConnectionArgs>) => T) =>
            pulumi.unsecret(connection.apply(pick));
        super(
            hostCheckProvider,
            name,
            {
                host: plain((c) => c.host),
                port: plain((c) => c.port ?? 22),
                user: plain((c) => c.user ?? "root"),
                privateKey: pulumi.secret(connection.apply((c) => c.privateKey ?? "")),
                hostKey: plain((c) => c.hostKey ?? ""),
                checkScript: args.checkScript,
                repairScripts: args.repairScripts,
                expected: args.expected,
                drifted: undefined,
            },
            { ...opts, additionalSecretOutputs: ["privateKey"] },
            // The type becomes pulumi-nodejs:dynamic/pullsnap:HostCheck.
            "pullsnap",
            "HostCheck",
        );
    }
}
