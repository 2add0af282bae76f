// What the runner tests stand on: a Btrfs volume on a loop device, a source tree with
// the metadata a whole-system backup must keep, and a loopback sshd serving that tree.
// Everything here is created by the tests and removed by them: loop devices are
// detached by name, processes are stopped by pid, and nothing else is touched.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer } from "node:net";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const RUNNER = path.resolve(__dirname, "../../hosts/backup-server/pullsnap");

export interface Result {
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
}

export interface Started {
    child: ChildProcess;
    done: Promise<Result>;
}

export interface RunOptions {
    env?: NodeJS.ProcessEnv;
    input?: string;
    cwd?: string;
}

/** Starts a command; `done` resolves (never rejects) when it exits. */
export function start(cmd: string, args: readonly string[], opts: RunOptions = {}): Started {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const done = new Promise<Result>((resolve) => {
        child.on("error", (e) => resolve({ code: 127, signal: null, stdout, stderr: stderr + String(e) }));
        child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    });
    // A command that exits before reading its input is not an error here.
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(opts.input ?? "");
    return { child, done };
}

/** Runs a command to its end. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<Result> {
    return start(cmd, args, opts).done;
}

/** Runs a command that must succeed, and returns its stdout. */
export async function must(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
    const r = await run(cmd, args, opts);
    if (r.code !== 0) {
        throw new Error(`${cmd} ${args.join(" ")} exited ${r.code ?? r.signal}\n${r.stdout}${r.stderr}`);
    }
    return r.stdout;
}

/** A bash script that must succeed; arguments are $1, $2, ... */
export function bash(script: string, ...args: string[]): Promise<string> {
    return must("bash", ["-euo", "pipefail", "-c", script, "bash", ...args]);
}

export async function tempDir(prefix: string): Promise<string> {
    return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
        });
    });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small seeded generator (mulberry32): the same seed replays a failing random test. */
export function mulberry32(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

/** Polls until `check` returns a value, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await check();
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(100);
    }
}

/** A Btrfs (or other) filesystem on a loop device over a sparse file. */
export class LoopVolume {
    private constructor(
        readonly image: string,
        readonly device: string,
        readonly mountpoint: string,
    ) {}

    static async create(dir: string, name: string, sizeMiB: number): Promise<LoopVolume> {
        const image = path.join(dir, `${name}.img`);
        const mountpoint = path.join(dir, name);
        await fs.mkdir(mountpoint);
        await must("truncate", ["-s", `${sizeMiB}M`, image]);
        const device = (await must("losetup", ["--find", "--show", image])).trim();
        const volume = new LoopVolume(image, device, mountpoint);
        try {
            await must("mkfs.btrfs", ["-q", "-f", device]);
            await must("mount", [device, mountpoint]);
        } catch (e) {
            await volume.destroy();
            throw e;
        }
        return volume;
    }

    /** Bytes of data extents in use, after a commit. */
    async dataUsed(): Promise<number> {
        // Wait for deleted subvolumes to be cleaned, then commit.
        await must("btrfs", ["subvolume", "sync", this.mountpoint]);
        await must("btrfs", ["filesystem", "sync", this.mountpoint]);
        const out = await must("btrfs", ["filesystem", "usage", "-b", this.mountpoint]);
        const m = /^Data,[^:]*: Size:\d+, Used:(\d+)/m.exec(out);
        if (!m) throw new Error(`no data usage in:\n${out}`);
        return Number(m[1]);
    }

    async destroy(): Promise<void> {
        // Deleted subvolumes are cleaned in the background; umount waits for that.
        for (let i = 0; i < 20; i++) {
            const mounted = await run("mountpoint", ["-q", this.mountpoint]);
            if (mounted.code !== 0) break;
            if ((await run("umount", [this.mountpoint])).code === 0) break;
            await sleep(250);
        }
        await run("losetup", ["-d", this.device]);
    }
}

/**
 * An sshd on 127.0.0.1 that serves `source` at /srv, in its own mount namespace, so the
 * pulled paths look like a real host's (the runner's default excludes cover /tmp, where
 * the tree really is). /srv/other is a separate tmpfs there, for --one-file-system.
 */
export class LoopbackSshd {
    private constructor(
        readonly dir: string,
        readonly port: number,
        readonly pid: number,
        private readonly child: ChildProcess,
        readonly clientKey: string,
        readonly knownHosts: string,
        /** Each command the client asked the forced command for, one per line. */
        readonly commandLog: string,
    ) {}

    static async start(dir: string, source: string): Promise<LoopbackSshd> {
        await fs.mkdir(dir, { recursive: true });
        // sshd's privilege separation needs this folder; Debian's unit normally makes it.
        await fs.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
        const hostKey = path.join(dir, "host_key");
        const clientKey = path.join(dir, "client_key");
        await must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
        await must("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", clientKey]);
        const commandLog = path.join(dir, "commands.log");
        const forced = path.join(dir, "forced-command");
        // Like the source's real forced command, it sees what the client asked for.
        await fs.writeFile(
            forced,
            `#!/bin/sh\nprintf '%s\\n' "$SSH_ORIGINAL_COMMAND" >>'${commandLog}'\nexec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\n`,
            {
                mode: 0o755,
            },
        );
        const pub = (await fs.readFile(`${clientKey}.pub`, "utf8")).trim();
        await fs.writeFile(path.join(dir, "authorized_keys"), `restrict,command="${forced}" ${pub}\n`);
        const port = await freePort();
        const config = path.join(dir, "sshd_config");
        await fs.writeFile(
            config,
            [
                `Port ${port}`,
                "ListenAddress 127.0.0.1",
                `HostKey ${hostKey}`,
                `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PidFile none",
                "",
            ].join("\n"),
        );
        const knownHosts = path.join(dir, "known_hosts");
        const hostPub = (await fs.readFile(`${hostKey}.pub`, "utf8")).trim();
        await fs.writeFile(knownHosts, `[127.0.0.1]:${port} ${hostPub}\n`);
        const script = [
            "set -e",
            'mount --bind "$1" /srv',
            "mount -t tmpfs -o size=1m tmpfs /srv/other",
            "echo 'on another filesystem' >/srv/other/file",
            'exec /usr/sbin/sshd -D -e -f "$2"',
        ].join("\n");
        const { child } = start("unshare", ["--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", source, config]);
        let log = "";
        child.stderr!.on("data", (d: string) => (log += d));
        const sshd = new LoopbackSshd(dir, port, child.pid!, child, clientKey, knownHosts, commandLog);
        try {
            await waitFor("sshd to listen", async () => (log.includes("Server listening") ? true : undefined), 10_000);
        } catch (e) {
            await sshd.stop();
            throw new Error(`${String(e)}\n${log}`);
        }
        return sshd;
    }

    async stop(): Promise<void> {
        if (this.child.exitCode !== null || this.child.signalCode !== null) return;
        const exited = new Promise((r) => this.child.once("exit", r));
        process.kill(this.pid, "SIGTERM");
        await exited;
    }
}

/** Runs the runner with its folders pointed at a test's own. */
export class Runner {
    constructor(
        readonly configDir: string,
        readonly stateDir: string,
        private readonly extraEnv: NodeJS.ProcessEnv = {},
    ) {}

    static async create(dir: string): Promise<Runner> {
        const configDir = path.join(dir, "etc");
        const stateDir = path.join(dir, "state");
        await fs.mkdir(path.join(configDir, "jobs"), { recursive: true });
        await fs.mkdir(stateDir, { recursive: true });
        return new Runner(configDir, stateDir);
    }

    env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
        // Only what the runner needs: no terminal, so no progress output.
        return {
            PATH: process.env.PATH,
            PULLSNAP_CONFIG_DIR: this.configDir,
            PULLSNAP_STATE_DIR: this.stateDir,
            ...this.extraEnv,
            ...extra,
        };
    }

    start(args: readonly string[], env: NodeJS.ProcessEnv = {}, input?: string): Started {
        return start(RUNNER, args, { env: this.env(env), input });
    }

    run(args: readonly string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<Result> {
        return this.start(args, env, input).done;
    }

    async writeJob(job: string, settings: Record<string, string | readonly string[]>): Promise<string> {
        const lines = [`# job ${job}, written by the tests`];
        for (const [key, value] of Object.entries(settings)) {
            for (const v of typeof value === "string" ? [value] : value) lines.push(`${key}=${v}`);
        }
        const file = path.join(this.configDir, "jobs", `${job}.conf`);
        await fs.writeFile(file, lines.join("\n") + "\n");
        return file;
    }

    /** Writes $PULLSNAP_CONFIG_DIR/pullsnap.conf, the server-wide config. */
    async writeServerConfig(settings: Record<string, string | readonly string[]>): Promise<string> {
        const lines = ["# pullsnap.conf, written by the tests"];
        for (const [key, value] of Object.entries(settings)) {
            for (const v of typeof value === "string" ? [value] : value) lines.push(`${key}=${v}`);
        }
        const file = path.join(this.configDir, "pullsnap.conf");
        await fs.writeFile(file, lines.join("\n") + "\n", { mode: 0o600 });
        return file;
    }

    async state(job: string): Promise<Record<string, string>> {
        const text = await fs.readFile(path.join(this.stateDir, job, "state"), "utf8");
        return Object.fromEntries(
            text
                .split("\n")
                .filter(Boolean)
                .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
        );
    }
}

/** Settings that point a job at a LoopbackSshd and a volume. */
export function jobSettings(sshd: LoopbackSshd, mount: string, extra: Record<string, string | readonly string[]> = {}) {
    return {
        source_host: "127.0.0.1",
        source_port: String(sshd.port),
        source_user: "root",
        ssh_key: sshd.clientKey,
        known_hosts: sshd.knownHosts,
        path: "/srv",
        mount,
        ...extra,
    };
}

/**
 * A source tree with what a whole-system pull must keep: a root-only folder and file,
 * foreign numeric owners, setuid and file capabilities, hard links, ACLs (access and
 * default), xattrs, symlinks (relative, absolute, dangling), a fifo, a sparse file, a
 * large file, odd names and old timestamps.
 */
export async function makeSourceTree(root: string): Promise<void> {
    await bash(
        `
        cd "$1"
        mkdir -p etc root home/alice/docs var/cache/apt srv-data other
        echo 'root:$6$salt$hash:19000:0:99999:7:::' >etc/shadow
        chmod 0600 etc/shadow
        chmod 0700 root
        echo 'only root reads this' >root/secret
        chmod 0400 root/secret
        echo 'alice writes' >home/alice/docs/notes.txt
        chown -R 1001:1001 home/alice
        chown 4242:4343 srv-data
        head -c 1000 /dev/urandom >srv-data/orphan-owner.bin
        chown 4242:4343 srv-data/orphan-owner.bin
        cp /bin/true etc/suid-true
        chmod 4755 etc/suid-true
        cp /bin/true etc/cap-true
        setcap cap_net_raw=ep etc/cap-true
        echo linked >home/alice/docs/a
        ln home/alice/docs/a home/alice/docs/b
        ln home/alice/docs/a etc/c-third-link
        setfacl -m u:1002:rw,g:1003:r home/alice/docs/notes.txt
        setfacl -d -m u:1002:rwx home/alice/docs
        setfattr -n user.origin -v 'source host' home/alice/docs/notes.txt
        setfattr -n user.binary -v 0x00ff10 etc/shadow
        ln -s ../etc/shadow home/alice/shadow-link
        ln -s /etc/passwd home/alice/absolute-link
        ln -s does-not-exist home/alice/dangling
        mkfifo var/fifo
        truncate -s 64M var/sparse.img
        printf 'data in the middle' | dd of=var/sparse.img bs=1 seek=33554432 conv=notrunc status=none
        head -c 24M /dev/urandom >var/large.bin
        echo cached >var/cache/apt/pkg.deb
        echo scratch >home/alice/build.tmp
        printf 'name with spaces\\n' >'home/alice/with spaces.txt'
        printf 'newline\\n' >"home/alice/new
line"
        # Times in the past: rsync leaves a folder's or link's time alone when it
        # is in the same second already, which a freshly made tree would be.
        find . -mindepth 1 -exec touch -h -d '2020-05-06 07:08:09.5' {} +
        touch -h -d '2001-02-03 04:05:06.123456789' home/alice/docs/a home/alice/shadow-link var/large.bin home/alice/docs
        `,
        root,
    );
}

/**
 * A comparable description of a tree: type, mode, owner, size, mtime, link target and
 * content hash per entry, hard-link groups, ACLs and all xattrs (security.* included).
 * `prune` names relative paths to leave out, with what is below them.
 */
export async function manifest(root: string, prune: readonly string[] = []): Promise<string> {
    return bash(
        `
        cd "$1"
        shift
        sel=()
        for p in "$@"; do sel+=(-path "./$p" -o); done
        if ((\${#sel[@]})); then unset 'sel[-1]'; sel=('(' "\${sel[@]}" ')' -prune -o); fi
        list() { find . -mindepth 1 "\${sel[@]}" "$@"; }
        # Hard links: name each inode by its first path, so inode numbers drop out.
        # A folder's size is the filesystem's business, not the tree's.
        list -printf '%P\\t%y\\t%m\\t%U:%G\\t%s\\t%T@\\t%l\\t%i\\n' | LC_ALL=C sort |
            awk -F'\\t' 'BEGIN { OFS = "\\t" } { if (!($8 in first)) first[$8] = $1; $8 = first[$8]; if ($2 == "d") $5 = "-"; print }'
        echo '--- content'
        list -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
        echo '--- acls'
        list ! -type l -print0 | LC_ALL=C sort -z | xargs -0r getfacl -n
        echo '--- xattrs'
        list -print0 | LC_ALL=C sort -z | xargs -0r getfattr -h -d -m - -e hex
        `,
        root,
        ...prune,
    );
}

/** Pids of every descendant of `pid`, from /proc. */
export async function descendants(pid: number): Promise<{ pid: number; comm: string }[]> {
    const children = new Map<number, { pid: number; comm: string }[]>();
    for (const entry of await fs.readdir("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const stat = await fs.readFile(`/proc/${entry}/stat`, "utf8");
            const close = stat.lastIndexOf(")");
            const comm = stat.slice(stat.indexOf("(") + 1, close);
            const ppid = Number(stat.slice(close + 2).split(" ")[1]);
            const list = children.get(ppid) ?? [];
            list.push({ pid: Number(entry), comm });
            children.set(ppid, list);
        } catch {
            // The process ended while we looked.
        }
    }
    const found: { pid: number; comm: string }[] = [];
    const queue = [pid];
    while (queue.length) {
        for (const child of children.get(queue.shift()!) ?? []) {
            found.push(child);
            queue.push(child.pid);
        }
    }
    return found;
}

export interface AlertRequest {
    method: string;
    url: string;
    headers: Record<string, string | string[] | undefined>;
    body: string;
}

/** An HTTP listener on 127.0.0.1 that records each request, standing in for Slack or a Matrix homeserver. */
export class AlertListener {
    readonly requests: AlertRequest[] = [];
    /** The status code the next requests get. */
    status = 200;

    private constructor(
        private readonly server: HttpServer,
        readonly port: number,
    ) {}

    static async start(): Promise<AlertListener> {
        const server = createHttpServer();
        const port = await new Promise<number>((resolve, reject) => {
            server.on("error", reject);
            server.listen(0, "127.0.0.1", () => {
                const address = server.address();
                if (typeof address === "object" && address) resolve(address.port);
                else reject(new Error("no port"));
            });
        });
        const listener = new AlertListener(server, port);
        server.on("request", (req, res) => {
            let body = "";
            req.setEncoding("utf8").on("data", (d: string) => (body += d));
            req.on("end", () => {
                listener.requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
                res.writeHead(listener.status, { "Content-Type": "application/json" });
                res.end("{}");
            });
        });
        return listener;
    }

    get url(): string {
        return `http://127.0.0.1:${this.port}`;
    }

    /** The requests received since the last call. */
    take(): AlertRequest[] {
        return this.requests.splice(0);
    }

    async stop(): Promise<void> {
        await new Promise((resolve) => this.server.close(resolve));
    }
}

/** A unit file's directives: name -> every value it is given, in order. */
export function unitDirectives(unit: string): Map<string, string[]> {
    const found = new Map<string, string[]>();
    for (const line of unit.split("\n")) {
        const m = /^([A-Za-z]+)=(.*)$/.exec(line);
        if (m) found.set(m[1], [...(found.get(m[1]) ?? []), m[2]]);
    }
    return found;
}
