// The source's forced command (hosts/source/rsync-gate) against a hostile
// client: a property test of its parser with random command lines, and every
// attack of test/fixtures/hostile-rsync-client.sh run with the real rsync on
// both ends. The attacks run twice: through the gate, where none may have any
// effect, and through no gate at all, where they must, so that the effect
// checks are known to see what an attack does. The lab repeats the attacks
// through sshd, rsyncr and the capability copy (test/e2e/hostile-client.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { bash, mulberry32, must, run, tempDir } from "../runner/harness";

const GATE = path.resolve(__dirname, "../../hosts/source/rsync-gate");
const ATTACKS = path.resolve(__dirname, "../fixtures/hostile-rsync-client.sh");
const RSYNC = "/usr/bin/rsync";

// The exact command the runner's pull sends for one path (hosts/backup-server/pullsnap, rsync 3.5.0).
const RUNNER_COMMAND = "rsync --server --sender -lHogtpAXrRxe.iLsfxCIvu --specials --timeout=600 --numeric-ids --inplace . /srv/data";
const JOB_PATHS = ["/srv/data", "/root", "/etc"];

let dir: string;
beforeAll(async () => {
    dir = await tempDir("pullsnap-gate-");
});
afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
});

interface Verdict {
    command: string;
    /** What the gate exec'd rsync with, or undefined when it refused. */
    argv?: string[];
    code: number;
}

/**
 * Runs the gate on many command lines in one bash, each case in a subshell,
 * with RSYNC_COPY pointed at a recorder that prints its arguments.
 */
async function judge(commands: string[], jobPaths: string[] = JOB_PATHS): Promise<Verdict[]> {
    const recorder = path.join(dir, "recorder");
    // Answers the gate's question whether it can --confine-root, as rsync 3.5 does.
    await fs.writeFile(recorder, "#!/bin/bash\n[[ $1 == --help ]] && exec echo ' --confine-root=DIR'\nprintf '%s\\0' \"$@\"\n", {
        mode: 0o755,
    });
    const input = path.join(dir, "commands");
    await fs.writeFile(input, commands.map((c) => `${c}\0`).join(""));
    const out = await bash(
        `set +e; source "$1"; RSYNC_COPY=$2; input=$3; shift 3
        logger() { :; }
        while IFS= read -r -d '' command; do
            argv=$( (export SSH_ORIGINAL_COMMAND=$command; main "$@") 2>/dev/null | base64 -w0; exit "\${PIPESTATUS[0]}")
            printf '%s %s\\n' "$?" "$argv"
        done <"$input"`,
        GATE,
        recorder,
        input,
        ...jobPaths,
    );
    return out
        .trimEnd()
        .split("\n")
        .map((line, i) => {
            const [code, encoded] = line.split(" ");
            const argv = Buffer.from(encoded ?? "", "base64")
                .toString("utf8")
                .split("\0")
                .slice(0, -1);
            return { command: commands[i], code: Number(code), argv: Number(code) === 0 ? argv : undefined };
        });
}

// ---------------------------------------------------------------- oracle --
// What a read-only sender for the job's paths is, written from rsync's manual
// independently of the gate's regular expressions: popt's reading of the
// arguments, then rsync's meaning of each option on the sending side.

/** Short options whose only effect on a sender is what and how it reads. */
const READ_ONLY_SHORT = new Set([..."lHogtpAXrRxDvqncSzdWIOJEm"]);
/** Long options likewise, with the values they may take. */
const READ_ONLY_LONG: Record<string, RegExp | null> = {
    "numeric-ids": null,
    specials: null,
    "no-specials": null,
    inplace: null,
    "open-noatime": null,
    "ignore-errors": null,
    "size-only": null,
    timeout: /^\d+$/,
    bwlimit: /^\d+$/,
    "confine-root": /^\//,
    "compress-level": /^\d$/,
    "checksum-seed": /^\d+$/,
};

/** Why argv is not a read-only sender for jobPaths, or undefined when it is one. */
function notReadOnlySender(argv: string[], jobPaths: string[]): string | undefined {
    if (argv[0] !== "--server" || argv[1] !== "--sender") return "not a sender";
    const end = argv.indexOf("--");
    if (end < 0 || argv[end + 1] !== ".") return "options do not end with -- .";
    for (const arg of argv.slice(2, end)) {
        if (arg.startsWith("--")) {
            const [name, ...rest] = arg.slice(2).split("=");
            const value = rest.length > 0 ? rest.join("=") : undefined;
            if (!(name in READ_ONLY_LONG)) return `long option ${name}`;
            const pattern = READ_ONLY_LONG[name];
            if ((pattern === null) !== (value === undefined) || (pattern && !pattern.test(value ?? ""))) return `value of ${name}`;
        } else if (arg.startsWith("-") && arg.length > 1) {
            // popt reads a cluster letter by letter; rsync's -e swallows the rest of it.
            for (const [i, letter] of [...arg.slice(1)].entries()) {
                if (letter === "e") {
                    if (!/^e\d*\.[A-Za-z]*$/.test(arg.slice(1 + i))) return `protocol marker ${arg}`;
                    break;
                }
                if (!READ_ONLY_SHORT.has(letter)) return `short option ${letter}`;
            }
        } else {
            return `argument ${arg} among the options`;
        }
    }
    const paths = argv.slice(end + 2);
    if (paths.length !== 1) return `${paths.length} paths`;
    if (!jobPaths.includes(paths[0])) return `path ${paths[0]}`;
    // Merge files named in the protocol must stay under the path.
    const confined = argv.slice(2, end).filter((a) => a.startsWith("--confine-root="));
    return paths[0] === "/" || (confined.length === 1 && confined[0] === `--confine-root=${paths[0]}`) ? undefined : "not confined";
}

// ------------------------------------------------------------- generator --

/** Random choices from a seed, so a failure can be replayed. */
function random(seed: number) {
    const next = mulberry32(seed);
    const int = (n: number) => Math.floor(next() * n);
    return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)] };
}

// Every short letter rsync has, digits and the odd characters a cluster may carry.
const ALL_SHORT = "abcdefghiklmnopqrstuvxyzABCDEFHIJKLMNOPRSTUVWXYZ0123456789@.";
// rsync's long options, read-only or not, as a client could send them.
const LONG_OPTIONS = [
    ...Object.keys(READ_ONLY_LONG),
    "remove-source-files", "remove-sent-files", "log-file", "log-file-format", "write-batch", "only-write-batch",
    "read-batch", "protect-args", "secluded-args", "no-secluded-args", "old-args", "files-from", "from0",
    "include-from", "exclude-from", "filter", "exclude", "include", "copy-links", "copy-unsafe-links",
    "copy-dirlinks", "keep-dirlinks", "safe-links", "munge-links", "no-munge-links", "daemon", "config",
    "server", "sender", "rsh", "rsync-path", "temp-dir", "partial-dir", "backup-dir", "link-dest",
    "copy-dest", "compare-dest", "delete", "delete-excluded", "delete-before", "delete-after", "iconv",
    "info", "debug", "stderr", "super", "fake-super", "chmod", "chown", "usermap", "groupmap", "list-only",
    "max-size", "min-size", "block-size", "checksum-choice", "compress-choice", "write-devices", "copy-devices",
    "mkpath", "fsync", "preallocate", "stats", "msgs2stderr", "no-W", "no-implied-dirs", "relative",
    "one-file-system", "devices", "no-devices", "sparse", "checksum", "recursive", "inc-recursive",
]; // prettier-ignore
// What the gate must never let through, picked more often than chance would.
const DANGEROUS_SHORT = "sLkKbfFTBMPiyu0@e";
const DANGEROUS_LONG = [
    "remove-source-files", "remove-sent-files", "log-file=/x", "write-batch=/x", "only-write-batch=/x", "protect-args",
    "secluded-args", "files-from=-", "copy-links", "copy-unsafe-links", "copy-dirlinks", "daemon", "config=/x",
    "temp-dir=/x", "iconv=utf8", "from0", "include-from=/etc/shadow", "rsync-path=sh",
]; // prettier-ignore
const VALUES = ["", "0", "600", "1024", "9", "10", "-", "/tmp/x", "/etc/shadow", "a b", "1M", "$(id)", "..", "%s"];
const PATHS = [
    ...JOB_PATHS,
    "/", "/srv", "/srv/data/", "/srv/data/.", "/srv/data/..", "/srv/data/../../etc/shadow", "/srv/database",
    "/srv//data", "//srv/data", "/root/.ssh", "/etc/shadow", "srv/data", "./srv/data", "-", "--", ".",
    "/srv/data*", "/srv/{data,x}", "~/x", "/srv/da\\ ta", "/proc/self/environ",
]; // prettier-ignore
const JUNK = [";", "&", "|", "$", "`", '"', "'", "\\", "\t", "\n", "*", "?", "[", "]", "{", "}", "~", "<", ">", "!", "#", "é", "\r", "%"];

function randomCommand(r: ReturnType<typeof random>): string {
    return r.next() < 0.4 ? nearRunnerCommand(r) : anyCommand(r);
}

/** The runner's command with one or two small changes: the boundary where mistakes hide. */
function nearRunnerCommand(r: ReturnType<typeof random>): string {
    const words = RUNNER_COMMAND.split(" ");
    for (let n = 1 + r.int(2); n > 0; n--) {
        const i = 3 + r.int(words.length - 3);
        const word = words[i];
        switch (r.int(6)) {
            case 0: // a letter more or less in the cluster
                words[3] =
                    r.next() < 0.7
                        ? words[3].replace("-", `-${r.pick([...(r.next() < 0.6 ? DANGEROUS_SHORT : ALL_SHORT)])}`)
                        : words[3].replace(/[A-Za-z]/, "");
                break;
            case 1: // another long option
                words.splice(
                    i,
                    0,
                    r.next() < 0.5
                        ? `--${r.pick(DANGEROUS_LONG)}`
                        : `--${r.pick(LONG_OPTIONS)}${r.next() < 0.5 ? `=${r.pick(VALUES)}` : ""}`,
                );
                break;
            case 2: // another path
                words.splice(i, 0, r.pick(PATHS));
                break;
            case 3: // one word gone
                words.splice(i, 1);
                break;
            case 4: // junk spliced into a word
                words[i] = word.slice(0, r.int(word.length + 1)) + r.pick(JUNK) + word.slice(r.int(word.length + 1));
                break;
            default: // two words swapped
                [words[i], words[3]] = [words[3], word];
        }
    }
    return words.join(" ");
}

function anyCommand(r: ReturnType<typeof random>): string {
    const cluster = () => {
        let letters = "";
        for (let i = 0, n = 1 + r.int(10); i < n; i++) letters += r.next() < 0.85 ? r.pick([...READ_ONLY_SHORT]) : r.pick([...ALL_SHORT]);
        const ext = r.next() < 0.6 ? r.pick(["e.iLsfxCIvu", "e.", "e31.LsfxC", "e", "e.s", "e.iLs fxC", "es", "e.i-L"]) : "";
        return `-${letters}${ext}`;
    };
    const long = () => {
        const name = r.next() < 0.6 ? r.pick(Object.keys(READ_ONLY_LONG)) : r.pick(LONG_OPTIONS);
        const value = READ_ONLY_LONG[name] !== null || r.next() < 0.3 ? `=${r.pick(VALUES)}` : "";
        return `--${name}${value}`;
    };
    const words: string[] = [];
    if (r.next() < 0.85) words.push("rsync", "--server", "--sender");
    else words.push(r.pick(["rsync", "/usr/bin/rsync", "sh", ""]), r.pick(["--server", "--sender", "--daemon", "-s"]));
    for (let i = 0, n = r.int(6); i < n; i++) words.push(r.next() < 0.5 ? cluster() : long());
    if (r.next() < 0.85) words.push(r.pick([".", ".", ".", "--", "./", ".."]));
    for (let i = 0, n = r.int(4); i < n; i++) words.push(r.next() < 0.7 ? r.pick(JOB_PATHS) : r.pick(PATHS));
    if (r.next() < 0.15) words.push(r.next() < 0.5 ? long() : cluster());
    // Splice junk into one word now and then, and vary the spacing.
    if (r.next() < 0.2) {
        const i = r.int(words.length);
        const at = r.int(words[i].length + 1);
        words[i] = words[i].slice(0, at) + r.pick(JUNK) + words[i].slice(at);
    }
    return words.join(r.next() < 0.9 ? " " : r.pick(["  ", "\t", " \\\n"]));
}

describe("the gate's parser", () => {
    it("lets the runner's exact pull through, confined to its path, with -- before it, and its sibling forms", async () => {
        const verdicts = await judge([
            RUNNER_COMMAND,
            "rsync --server --sender -lHogtpAXrRxe.iLsfxCIvu --specials --timeout=600 --bwlimit=1024 --numeric-ids --inplace . /",
            "rsync --server --sender -logDtpre.iLsfxCIvu . /etc",
            "rsync --server --sender -vlogDtprcSze.iLsfxCIvu . /root",
        ]);
        expect(verdicts[0].argv).toEqual([
            "--server", "--sender", "-lHogtpAXrRxe.iLsfxCIvu", "--specials", "--timeout=600", "--numeric-ids", "--inplace",
            "--confine-root=/srv/data", "--", ".", "/srv/data",
        ]); // prettier-ignore
        expect(verdicts.slice(1).map((v) => v.code)).toEqual([126, 0, 0]);
        // For / there is nothing to confine to.
        expect((await judge([verdicts[1].command], ["/"]))[0].argv?.slice(-4)).toEqual(["--inplace", "--", ".", "/"]);
    });

    it.each<[string, string]>([
        ["protect-args in the cluster", "rsync --server --sender -slogDtpre.iLsfxCIvu . /etc"],
        ["protect-args at the end of the cluster", "rsync --server --sender -logDtprse.iLsfxCIvu . /etc"],
        ["--protect-args", "rsync --server --sender --protect-args -logDtpre.iLsfxCIvu . /etc"],
        ["--secluded-args", "rsync --server --sender --secluded-args -logDtpre.iLsfxCIvu . /etc"],
        ["--remove-source-files", "rsync --server --sender -logDtpre.iLsfxCIvu --remove-source-files . /etc"],
        ["--remove-sent-files", "rsync --server --sender -logDtpre.iLsfxCIvu --remove-sent-files . /etc"],
        ["--log-file", "rsync --server --sender -logDtpre.iLsfxCIvu --log-file=/etc/x . /etc"],
        ["--write-batch", "rsync --server --sender -logDtpre.iLsfxCIvu --write-batch=/etc/x . /etc"],
        ["--files-from", "rsync --server --sender -logDtpre.iLsfxCIvu --files-from=- --from0 . /etc"],
        ["-L (follow symlinks)", "rsync --server --sender -lLogDtpre.iLsfxCIvu . /etc"],
        ["-k (follow dir symlinks)", "rsync --server --sender -klogDtpre.iLsfxCIvu . /etc"],
        ["an option after the paths", "rsync --server --sender -logDtpre.iLsfxCIvu . /etc --remove-source-files"],
        ["a receiver (push)", "rsync --server -logDtpre.iLsfxCIvu . /etc"],
        ["a path outside the job", "rsync --server --sender -logDtpre.iLsfxCIvu . /home"],
        ["a path under a job path", "rsync --server --sender -logDtpre.iLsfxCIvu . /etc/shadow"],
        ["a job path with ..", "rsync --server --sender -logDtpre.iLsfxCIvu . /etc/../root/.ssh"],
        ["a job path with a trailing slash", "rsync --server --sender -logDtpre.iLsfxCIvu . /etc/"],
        ["a job path's prefix twin", "rsync --server --sender -logDtpre.iLsfxCIvu . /etcetera"],
        ["no paths", "rsync --server --sender -logDtpre.iLsfxCIvu ."],
        ["two job paths in one pull", "rsync --server --sender -logDtpre.iLsfxCIvu . /etc /root"],
        ["a client's own --confine-root", "rsync --server --sender -logDtpre.iLsfxCIvu --confine-root=/ . /etc"],
        ["no dot", "rsync --server --sender -logDtpre.iLsfxCIvu /etc"],
        ["a shell", ""],
        ["another program", "cat /etc/shadow"],
        ["a backslash escape", "rsync --server --sender -logDtpre.iLsfxCIvu . /etc\\ /root"],
        ["a command separator", "rsync --server --sender -logDtpre.iLsfxCIvu . /etc;id"],
        ["a newline", "rsync --server --sender -logDtpre.iLsfxCIvu . /etc\nid"],
    ])("refuses %s", async (_name, command) => {
        const [verdict] = await judge([command]);
        expect(verdict.code).toBe(126);
        expect(verdict.argv).toBeUndefined();
    });

    it("refuses job paths in authorized_keys that are not plain absolute paths", async () => {
        for (const paths of [[], ["etc"], ["/etc/"], ["/srv/../etc"], ["/srv/a b"], ["/srv/*"]]) {
            expect([paths, (await judge(["rsync --server --sender -logDtpre.iLsfxCIvu . /etc"], paths))[0].code]).toEqual([paths, 126]);
        }
    });

    it("accepts only read-only senders for the job's paths, over random command lines", async () => {
        const seed = Number(process.env.GATE_FUZZ_SEED ?? Date.now() % 1_000_000);
        const r = random(seed);
        const commands = Array.from({ length: 3000 }, () => randomCommand(r));
        const verdicts = await judge(commands);
        const accepted = verdicts.filter((v) => v.code === 0);
        const wrong = accepted
            .map((v) => ({ command: v.command, why: notReadOnlySender(v.argv ?? [], JOB_PATHS) }))
            .filter((v) => v.why !== undefined);
        expect(wrong, `seed ${seed}`).toEqual([]);
        // Accepted means exec'd verbatim: the command's own words, confined, with -- before the dot.
        for (const v of accepted) {
            const words = v.command.split(" ").filter(Boolean).slice(1);
            const dot = words.indexOf(".");
            const confine = words[dot + 1] === "/" ? [] : [`--confine-root=${words[dot + 1]}`];
            expect(v.argv).toEqual([...words.slice(0, dot), ...confine, "--", ...words.slice(dot)]);
        }
        // Refused means refused with 126, never some other failure of the script.
        expect(verdicts.filter((v) => v.code !== 0 && v.code !== 126)).toEqual([]);
        // The generator reaches both sides, or this test would prove nothing.
        expect(accepted.length, `seed ${seed}`).toBeGreaterThan(150);
        expect(verdicts.length - accepted.length, `seed ${seed}`).toBeGreaterThan(1000);
        console.log(`gate fuzz (seed ${seed}): ${commands.length} command lines, ${accepted.length} accepted, all read-only senders`);
    });

    it("has an oracle that tells a read-only sender from the rest", () => {
        const ok = ["--server", "--sender", "-lHogtpAXrRxe.iLsfxCIvu", "--timeout=600", "--confine-root=/etc", "--", ".", "/etc"];
        expect(notReadOnlySender(ok, JOB_PATHS)).toBeUndefined();
        const bad: string[][] = [
            ["--server", "--sender", "-slogtpr", "--", ".", "/etc"],
            ["--server", "--sender", "-le.iLs", "--remove-source-files", "--", ".", "/etc"],
            ["--server", "--sender", "--timeout=x", "--", ".", "/etc"],
            ["--server", "--sender", "-le.iLs", "--", ".", "/etc/shadow"],
            ["--server", "-le.iLs", "--", ".", "/etc"],
            ["--server", "--sender", "-le.iLs", ".", "/etc"],
            ["--server", "--sender", "-le.iLs", "--", ".", "/etc"],
            ["--server", "--sender", "-le.iLs", "--confine-root=/", "--", ".", "/etc"],
            ["--server", "--sender", "-le.iLs", "--confine-root=/etc", "--", ".", "/etc", "/root"],
        ];
        expect(bad.map((argv) => notReadOnlySender(argv, JOB_PATHS) !== undefined)).toEqual(bad.map(() => true));
    });
});

// ------------------------------------------------------- hostile client --

interface Outcome {
    name: string;
    code: number;
    before: string;
    after: string;
    loot: string;
}

describe("a hostile rsync client with the backup key", () => {
    let root: string;
    let canary: string;
    let outside: string;
    const SECRET = "pullsnap-outside-secret-7f3a";

    beforeAll(async () => {
        root = path.join(dir, "host");
        canary = path.join(root, "srv/canary");
        outside = path.join(root, "opt/outside/secret.txt");
        await bash(
            `mkdir -p "$1/srv/canary/drop" "$1/opt/outside" "$1/srv/data"
            for i in 1 2 3; do echo "victim $i" >"$1/srv/canary/victim-$i"; done
            echo "$2" >"$1/opt/outside/secret.txt" && chmod 0600 "$1/opt/outside/secret.txt"
            ln -s "$1/opt/outside/secret.txt" "$1/srv/canary/link-out"
            ln -s "$1/opt/outside" "$1/srv/canary/dirlink-out"
            cp -a "$1/srv/canary" "$1/canary.orig"`,
            root,
            SECRET,
        );
    });

    /**
     * Stands in for sshd: the command arrives as SSH_ORIGINAL_COMMAND, then the
     * forced command runs with the job's paths, or (no gate) a shell runs it.
     */
    async function writeTransport(work: string, gate: boolean): Promise<string> {
        const log = path.join(work, "gate.log");
        const transport = path.join(work, "transport");
        await fs.writeFile(
            transport,
            gate
                ? `#!/bin/bash
shift
export SSH_ORIGINAL_COMMAND="$*" SSH_CLIENT="192.0.2.66 40000 22"
exec bash -c 'source "$1"; shift; RSYNC_COPY=${RSYNC}; logger() { printf "%s\\n" "$*" >>"${log}"; }; main "$@"' gate "${GATE}" "${canary}" "${root}/srv/data"
`
                : `#!/bin/bash\nshift\nexec bash -c "$*"\n`,
            { mode: 0o755 },
        );
        return transport;
    }

    /** Runs every attack through TRANSPORT; `gate` false means no forced command at all. */
    async function attack(gate: boolean): Promise<{ outcomes: Outcome[]; log: string }> {
        const work = await tempDir("pullsnap-attack-");
        const log = path.join(work, "gate.log");
        const transport = await writeTransport(work, gate);
        const r = await run(ATTACKS, [], {
            env: {
                PATH: process.env.PATH,
                TRANSPORT: transport,
                HOST: "rsyncr@source",
                CANARY: canary,
                OUTSIDE_FILE: outside,
                SECRET,
                WORK: work,
                // Without the gate attacks do things: restore the canaries before each.
                RESET: gate ? "" : `rm -rf '${canary}' && cp -a '${root}/canary.orig' '${canary}'`,
            },
        });
        expect(r.code, r.stderr).toBe(0);
        const outcomes = r.stdout
            .trimEnd()
            .split("\n")
            .map((line) => {
                const [name, code, before, after, loot] = line.split("\t");
                return { name, code: Number(code), before, after, loot };
            });
        const text = await fs.readFile(log, "utf8").catch(() => "");
        if (!process.env.KEEP) await fs.rm(work, { recursive: true, force: true });
        return { outcomes, log: text };
    }

    const effect = (o: Outcome) => (o.before !== o.after ? "changed the source" : o.loot === "secret" ? "read outside the job" : "none");

    it("has no effect on the source through the gate, and the honest pulls work", async () => {
        const baseline = (await must("bash", ["-c", `cd '${canary}' && find . | sort | sha256sum`])).trim();
        const { outcomes, log } = await attack(true);
        expect(outcomes.length).toBeGreaterThan(30);
        const honest = ["honest-pull", "runner-pull"];
        expect(outcomes.filter((o) => honest.includes(o.name)).map((o) => [o.name, o.code])).toEqual(honest.map((n) => [n, 0]));
        const effects = outcomes.map((o) => [o.name, effect(o)]);
        expect(effects).toEqual(outcomes.map((o) => [o.name, "none"]));
        // Nothing changed between the attacks either.
        expect(new Set(outcomes.map((o) => o.after)).size).toBe(1);
        expect((await must("bash", ["-c", `cd '${canary}' && find . | sort | sha256sum`])).trim()).toBe(baseline);
        // Each refusal is logged, on one line, with its reason and the client's address.
        const refusals = log.split("\n").filter((l) => l.includes("refused from 192.0.2.66: "));
        expect(refusals.length).toBe(outcomes.filter((o) => !honest.includes(o.name)).length);
        expect(log.split("\n").filter((l) => l.startsWith("touch"))).toEqual([]);
        console.log(outcomes.map((o) => `${o.name}: exit ${o.code}, ${effect(o)}`).join("\n"));
    });

    it("would have effects without the gate: the checks see what an attack does", async () => {
        const { outcomes } = await attack(false);
        const effects = Object.fromEntries(outcomes.map((o) => [o.name, effect(o)]));
        expect(effects).toMatchObject({
            "honest-pull": "none",
            "protect-args-remove": "changed the source",
            "secluded-args-remove": "changed the source",
            "protect-args-log-file": "changed the source",
            "protect-args-outside": "read outside the job",
            "remove-source-files": "changed the source",
            "remote-log-file": "changed the source",
            push: "changed the source",
            "push-over-victim": "changed the source",
            "outside-path": "read outside the job",
            "dotdot-path": "read outside the job",
            "follow-links": "read outside the job",
            "copy-dirlinks": "read outside the job",
            "copy-unsafe-links": "read outside the job",
            "shell-injection": "changed the source",
            "command-substitution": "changed the source",
            "newline-injection": "changed the source",
            "rsync-path": "changed the source",
        });
    });

    /**
     * A client that rewrites its own protocol stream on the way out: one filter
     * rule becomes another of the same length, which no command line shows.
     */
    async function rewritingTransport(work: string, inner: string, from: string, to: string): Promise<string> {
        const script = path.join(work, "rewrite.js");
        await fs.writeFile(
            script,
            `const { spawn } = require("child_process");
const args = process.argv.slice(2);
const rest = args.slice(args[0] === "-l" ? 3 : 1);
const child = spawn(${JSON.stringify(inner)}, ["source", rest.join(" ")], { stdio: ["pipe", "inherit", "inherit"] });
const from = Buffer.from(${JSON.stringify(from)}), to = Buffer.from(${JSON.stringify(to)});
process.stdin.on("data", (d) => {
    for (let i = d.indexOf(from); i >= 0; i = d.indexOf(from, i + to.length)) to.copy(d, i);
    child.stdin.write(d);
});
process.stdin.on("end", () => child.stdin.end());
child.on("exit", (code) => process.exit(code ?? 1));
`,
        );
        const transport = path.join(work, "rewriting-transport");
        await fs.writeFile(transport, `#!/bin/sh\nexec '${process.execPath}' '${script}' "$@"\n`, { mode: 0o755 });
        return transport;
    }

    /** Pulls the canaries with a filter rule rewritten in the stream into `rule`; what arrived. */
    async function pullWithRule(gate: boolean, rule: string): Promise<{ code: number | null; got: string[] }> {
        const work = await tempDir("pullsnap-merge-");
        const marker = `- ${"Q".repeat(rule.length - 2)}`;
        const transport = await rewritingTransport(work, await writeTransport(work, gate), marker, rule);
        const loot = path.join(work, "loot");
        await fs.mkdir(loot);
        const r = await run("timeout", ["30", RSYNC, "-e", transport, "-a", `--filter=${marker}`, `source:${canary}`, `${loot}/`]);
        const got = await fs.readdir(path.join(loot, "canary")).catch(() => [] as string[]);
        await fs.rm(work, { recursive: true, force: true });
        return { code: r.code, got: got.sort() };
    }

    it("keeps a merge file named in the protocol from being opened outside the job path", async () => {
        // Read as filter rules, this root-only file would exclude victim-1: its effect shows what the sender read.
        const rules = path.join(root, "opt/outside/rules");
        await fs.writeFile(rules, "- victim-1\n", { mode: 0o600 });
        const unconfined = await pullWithRule(false, `. ${rules}`);
        expect(unconfined.got).toContain("victim-2");
        expect(unconfined.got).not.toContain("victim-1");
        const confined = await pullWithRule(true, `. ${rules}`);
        expect(confined.code).not.toBe(0);
        expect(confined.got).not.toContain("victim-2");
        // An endless file (the sender would spin on it) is refused at once, and no sender stays behind.
        const zero = await pullWithRule(true, ". /dev/zero");
        expect(zero.code).not.toBe(124);
        expect((await run("pgrep", ["-f", `confine-root=${canary}`])).stdout).toBe("");
    });
});
