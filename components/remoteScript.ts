// Turns a script kept under hosts/ into the single shell command one SSH
// session runs: its inputs as shell variables, the files it installs as quoted
// heredocs, then the script itself. Pure functions, so tests can read exactly
// what a host will run.
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

export const HOSTS_DIR = path.join(__dirname, "..", "hosts");

/** Where the runner and its config live on the backup server. */
export const CONFIG_DIR = "/etc/pullsnap";
export const RUNNER_PATH = "/usr/local/sbin/pullsnap";

/** Reads a file kept under hosts/, e.g. hostFile("source/rsync-gate"). */
export function hostFile(relative: string): string {
    return fs.readFileSync(path.join(HOSTS_DIR, relative), "utf8");
}

/** Quotes a value for POSIX sh, whatever it contains. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface ScriptBundle {
    /** Shell variables the script reads, assigned before it runs. */
    readonly vars?: Record<string, string | number | readonly string[]>;
    /** Files shipped with the script: variable name -> content; the variable holds a temp path. */
    readonly files?: Record<string, string>;
    /**
     * A file whose content arrives on the session's stdin (the step's `stdin`), not in
     * the command: for secrets, because a failed command's error quotes the whole command.
     */
    readonly stdinFile?: string;
    /** The script body, usually hostFile("..."). */
    readonly script: string;
}

function checkName(name: string): string {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) {
        throw new Error(`bad shell variable name ${JSON.stringify(name)}: use upper case letters, digits and _`);
    }
    return name;
}

function assignment(name: string, value: string | number | readonly string[]): string {
    checkName(name);
    if (Array.isArray(value)) {
        return `${name}=(${value.map((v) => shellQuote(String(v))).join(" ")})`;
    }
    return `${name}=${shellQuote(String(value))}`;
}

/** Renders the command one SSH session runs. Deterministic, so a change in any input is a diff. */
export function renderScript(bundle: ScriptBundle): string {
    const lines = ["set -euo pipefail", "umask 077", "PULLSNAP_PAYLOAD=$(mktemp -d)", "trap 'rm -rf \"$PULLSNAP_PAYLOAD\"' EXIT"];
    for (const [name, value] of Object.entries(bundle.vars ?? {})) {
        lines.push(assignment(name, value));
    }
    for (const [name, content] of Object.entries(bundle.files ?? {})) {
        // A delimiter derived from the content can never occur inside it by accident.
        const delimiter = `PULLSNAP_${createHash("sha256").update(content).digest("hex").slice(0, 16)}`;
        if (content.includes(delimiter)) {
            throw new Error(`file ${name} contains its own heredoc delimiter`);
        }
        lines.push(`${checkName(name)}="$PULLSNAP_PAYLOAD/${name}"`);
        lines.push(`cat >"$${name}" <<'${delimiter}'`, content.endsWith("\n") ? content.slice(0, -1) : content, delimiter);
    }
    if (bundle.stdinFile !== undefined) {
        const name = checkName(bundle.stdinFile);
        lines.push(`${name}="$PULLSNAP_PAYLOAD/${name}"`, `cat >"$${name}"`);
    }
    // Run the body in bash whatever the login shell is, with the prologue's variables exported.
    const body = bundle.script.replace(/^#!.*\n/, "");
    const command = `bash -c ${shellQuote([...lines, body].join("\n"))}`;
    // The kernel caps one argument at 128 KiB (MAX_ARG_STRLEN).
    if (command.length > 120 * 1024) {
        throw new Error(`remote script is ${command.length} bytes; the limit for one command is 120 KiB`);
    }
    return command;
}

/** Fills a unit template from hosts/backup-server; an unknown placeholder is an error. */
export function renderUnit(template: string, values: Record<string, string>): string {
    return template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
        if (!(key in values)) {
            throw new Error(`unit template placeholder ${whole} has no value; known: ${Object.keys(values).join(", ")}`);
        }
        return values[key];
    });
}
