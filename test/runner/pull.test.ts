// The runner against real Btrfs, real rsync and a real sshd: pull, snapshot, restore,
// failures, locking, retention on the volume, metrics, notify, status and the sandbox.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import {
    LoopbackSshd,
    LoopVolume,
    RUNNER,
    Runner,
    bash,
    descendants,
    freePort,
    jobSettings,
    makeSourceTree,
    manifest,
    must,
    run,
    tempDir,
    waitFor,
    type Started,
} from "./harness";

const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
// What the jobs below exclude, and the other filesystem --one-file-system must skip.
const NOT_PULLED = ["home/alice/build.tmp", "var/cache", "other"];

let dir: string;
let src: string;
let volume: LoopVolume;
let sshd: LoopbackSshd;
let runner: Runner;
let mount: string;
const running: Started[] = [];

/** Read-only snapshots of the job's current, under given names: a history without waiting for it. */
async function seedSnapshots(job: string, names: readonly string[]): Promise<void> {
    for (const name of names) {
        await must("btrfs", [
            "-q",
            "subvolume",
            "snapshot",
            "-r",
            path.join(mount, job, "current"),
            path.join(mount, job, "snapshots", name),
        ]);
    }
}

async function snapshots(job: string): Promise<string[]> {
    try {
        return (await fs.readdir(path.join(mount, job, "snapshots"))).sort();
    } catch {
        return [];
    }
}

async function writeJob(job: string, extra: Record<string, string | readonly string[]> = {}) {
    return runner.writeJob(job, jobSettings(sshd, mount, { exclude: ["*.tmp", "/srv/var/cache"], ...extra }));
}

beforeAll(async () => {
    dir = await tempDir("pullsnap-pull-");
    src = path.join(dir, "source");
    await fs.mkdir(src);
    await makeSourceTree(src);
    volume = await LoopVolume.create(dir, "volume", 2048);
    mount = volume.mountpoint;
    sshd = await LoopbackSshd.start(path.join(dir, "sshd"), src);
    runner = await Runner.create(dir);
});

afterAll(async () => {
    for (const s of running) {
        if (s.child.exitCode === null && s.child.signalCode === null) {
            for (const d of await descendants(s.child.pid!)) process.kill(d.pid, "SIGKILL");
            s.child.kill("SIGKILL");
        }
        await s.done;
    }
    await sshd?.stop();
    await volume?.destroy();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe("run", () => {
    it("pulls a whole tree with its metadata into a read-only snapshot", async () => {
        await writeJob("main");
        const r = await runner.run(["run", "main"]);
        expect(r.stderr).toMatch(/\[main\] snapshot \S+ taken/);
        expect(r.code, r.stderr).toBe(0);
        // For the journal: every line names the job.
        for (const line of r.stderr.trim().split("\n")) expect(line).toMatch(/^\[main\] /);

        const names = await snapshots("main");
        expect(names).toHaveLength(1);
        expect(names[0]).toMatch(STAMP);
        const snap = path.join(mount, "main", "snapshots", names[0]);
        expect(await must("btrfs", ["property", "get", "-ts", snap, "ro"])).toBe("ro=true\n");
        expect((await fs.stat(path.join(mount, "main", "current"))).ino).toBe(256);
        expect((await fs.stat(path.join(mount, "main"))).mode & 0o777).toBe(0o700);

        expect(await manifest(path.join(snap, "srv"), NOT_PULLED)).toBe(await manifest(src, NOT_PULLED));
        // Excluded, and the other filesystem's mount point is kept empty.
        await expect(fs.stat(path.join(snap, "srv/home/alice/build.tmp"))).rejects.toThrow();
        await expect(fs.stat(path.join(snap, "srv/var/cache"))).rejects.toThrow();
        expect(await fs.readdir(path.join(snap, "srv/other"))).toEqual([]);
    });

    it("asks the source only for rsync --server --sender, with no --rsync-path", async () => {
        const commands = (await fs.readFile(sshd.commandLog, "utf8")).trim().split("\n");
        expect(commands.length).toBeGreaterThan(0);
        for (const c of commands) expect(c).toMatch(/^rsync --server --sender -\S+ .* \. \/srv$/);
    });

    it("pulls each job path in its own connection, which the source's gate confines to that path", async () => {
        const before = (await fs.readFile(sshd.commandLog, "utf8")).trim().split("\n").length;
        await writeJob("two", { path: ["/srv/home", "/srv/etc"] });
        const r = await runner.run(["run", "two"]);
        expect(r.code, r.stderr).toBe(0);
        const commands = (await fs.readFile(sshd.commandLog, "utf8")).trim().split("\n").slice(before);
        expect(commands.map((c) => c.replace(/^.* \. /, ". "))).toEqual([". /srv/home", ". /srv/etc"]);
        const snap = path.join(mount, "two", "snapshots", (await snapshots("two"))[0]);
        expect((await fs.readdir(path.join(snap, "srv"))).sort()).toEqual(["etc", "home"]);
        expect(await fs.readFile(path.join(snap, "srv/home/alice/docs/notes.txt"), "utf8")).toBe("alice writes\n");
        // A hard link between two job paths is kept within each pull only: here, two files.
        const [a, c] = await Promise.all([
            fs.stat(path.join(snap, "srv/home/alice/docs/a")),
            fs.stat(path.join(snap, "srv/etc/c-third-link")),
        ]);
        expect(a.ino).not.toBe(c.ino);
    });

    it("records the success in the state and in metrics, replacing the file atomically", async () => {
        const metricsDir = path.join(dir, "metrics");
        await fs.mkdir(metricsDir);
        await writeJob("main", { metrics_dir: metricsDir });
        const file = path.join(metricsDir, "pullsnap_main.prom");

        expect(await runner.run(["run", "main"])).toMatchObject({ code: 0 });
        const first = await fs.stat(file);
        expect(await runner.run(["run", "main"])).toMatchObject({ code: 0 });
        const second = await fs.stat(file);
        // A new inode each time: written beside, then renamed over the old one.
        expect(second.ino).not.toBe(first.ino);
        expect(second.mode & 0o777).toBe(0o644);
        expect(await fs.readdir(metricsDir)).toEqual(["pullsnap_main.prom"]);

        const text = await fs.readFile(file, "utf8");
        const values = new Map<string, number>();
        for (const line of text.trim().split("\n")) {
            if (line.startsWith("#")) {
                expect(line).toMatch(/^# (HELP|TYPE) pullsnap_\w+ .+$/);
                continue;
            }
            const m = /^(pullsnap_\w+)\{job="main"\} (\d+)$/.exec(line);
            expect(m, line).not.toBeNull();
            values.set(m![1], Number(m![2]));
        }
        const state = await runner.state("main");
        expect(values.get("pullsnap_last_success_timestamp_seconds")).toBe(Number(state.last_success));
        expect(values.get("pullsnap_last_run_exit_code")).toBe(0);
        expect(values.get("pullsnap_snapshots")).toBe((await snapshots("main")).length);
        expect(values.get("pullsnap_volume_free_bytes")).toBeGreaterThan(0);
        expect(values.get("pullsnap_max_age_seconds")).toBe(36 * 3600);
        expect(values.has("pullsnap_last_run_duration_seconds")).toBe(true);
        expect(values.has("pullsnap_last_run_transferred_bytes")).toBe(true);
        expect(state.last_snapshot).toBe((await snapshots("main")).at(-1));
        expect(state.failing_since).toBe("");
    });

    it("stores a 1 MiB change inside a 200 MiB file in about 1 MiB", async () => {
        await writeJob("delta", { path: "/srv/big" });
        await bash('mkdir -p "$1/big" && head -c 200M /dev/urandom >"$1/big/file.img"', src);
        expect(await runner.run(["run", "delta"])).toMatchObject({ code: 0 });
        const before = await volume.dataUsed();
        await bash('head -c 1M /dev/urandom | dd of="$1/big/file.img" bs=1M seek=77 conv=notrunc status=none', src);
        const r = await runner.run(["run", "delta"]);
        expect(r.code, r.stderr).toBe(0);
        const cost = (await volume.dataUsed()) - before;
        console.log(`1 MiB changed in a 200 MiB file: the new snapshot added ${(cost / 1048576).toFixed(3)} MiB of data`);
        expect(cost).toBeGreaterThan(0);
        expect(cost).toBeLessThan(1.1 * 1048576);
        const snaps = await snapshots("delta");
        expect(snaps).toHaveLength(2);
        expect(await bash('sha256sum <"$1"', path.join(mount, "delta/snapshots", snaps[1], "srv/big/file.img"))).toBe(
            await bash('sha256sum <"$1"', path.join(src, "big/file.img")),
        );
        await fs.rm(path.join(src, "big"), { recursive: true });
    });

    it("shows rsync's overall progress on a terminal", async () => {
        // script(1) gives the runner a terminal, as an operator's shell would.
        const r = await run("script", ["-qec", `${RUNNER} run main`, "/dev/null"], { env: runner.env() });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/\r\s+[\d,]+\s+\d+%\s+\S+\/s\s+\d+:\d\d:\d\d/);
        expect(r.stdout).toContain("snapshot ");
    });

    it("takes the snapshot when rsync only reports vanished files (exit 24), with a warning", async () => {
        const wrapper = path.join(dir, "rsync-vanished");
        await fs.writeFile(wrapper, '#!/bin/sh\nrsync "$@" || exit\nexit 24\n', { mode: 0o755 });
        const before = await snapshots("main");
        await new Promise((r) => setTimeout(r, 1100));
        const r = await runner.run(["run", "main"], { PULLSNAP_RSYNC: wrapper });
        expect(r.stderr).toContain("warning: some files vanished during the transfer (rsync exit 24)");
        expect(r.code, r.stderr).toBe(0);
        expect(await snapshots("main")).toHaveLength(before.length + 1);
    });
});

describe("a failed run", () => {
    const OLD = ["2020-01-01T00:00:00Z", "2021-06-15T12:00:00Z", "2021-06-15T13:00:00Z"];

    it("exits 10, takes no snapshot, deletes nothing and calls the notify hook", async () => {
        // Old snapshots that the policy below would delete after a success.
        await writeJob("flaky");
        expect(await runner.run(["run", "flaky"])).toMatchObject({ code: 0 });
        await seedSnapshots("flaky", OLD);
        const before = await snapshots("flaky");
        const hook = path.join(dir, "notify-hook");
        const hookLog = path.join(dir, "notify.log");
        await fs.writeFile(
            hook,
            `#!/bin/sh\nprintf '%s|' "$@" >>'${hookLog}'\nprintf 'env:%s|%s|%s\\n' "$PULLSNAP_JOB" "$PULLSNAP_EXIT_CODE" "$PULLSNAP_MESSAGE" >>'${hookLog}'\n`,
            { mode: 0o755 },
        );
        const metricsDir = path.join(dir, "metrics-flaky");
        await fs.mkdir(metricsDir);
        const down = await freePort();
        await writeJob("flaky", {
            source_port: String(down),
            preserve_min: "no",
            preserve: "no",
            notify: `${hook} --channel backups`,
            metrics_dir: metricsDir,
        });

        const r = await runner.run(["run", "flaky"]);
        expect(r.code, r.stderr).toBe(10);
        expect(r.stderr).toMatch(
            new RegExp(
                `\\[flaky\\] error: transfer failed: ssh failed: ssh: connect to host 127\\.0\\.0\\.1 port ${down}: Connection refused \\(rsync exit (255|12)\\); no snapshot taken`,
            ),
        );
        expect(await snapshots("flaky")).toEqual(before);

        const calls = (await fs.readFile(hookLog, "utf8")).trim().split("\n");
        expect(calls).toHaveLength(1);
        const [args, env] = calls[0].split("env:");
        expect(args).toMatch(/^--channel\|backups\|flaky\|10\|transfer failed: .+\|$/);
        expect(env).toMatch(/^flaky\|10\|transfer failed: /);

        const state = await runner.state("flaky");
        expect(state.last_exit).toBe("10");
        expect(state.failing_since).toMatch(/^\d+$/);
        expect(state.last_error).toContain("transfer failed");
        expect(await fs.readFile(path.join(metricsDir, "pullsnap_flaky.prom"), "utf8")).toContain(
            'pullsnap_last_run_exit_code{job="flaky"} 10',
        );
    });

    it("fails on a source whose host key is not the pinned one", async () => {
        const wrongKnownHosts = path.join(dir, "wrong_known_hosts");
        await bash(
            'ssh-keygen -q -t ed25519 -N "" -f "$1/impostor" && printf "[127.0.0.1]:%s %s\\n" "$2" "$(cat "$1/impostor.pub")" >"$3"',
            dir,
            String(sshd.port),
            wrongKnownHosts,
        );
        await writeJob("impostor", { known_hosts: wrongKnownHosts });
        const r = await runner.run(["run", "impostor"]);
        expect(r.code, r.stderr).toBe(10);
        expect(r.stderr).toContain("transfer failed: ssh failed: Host key verification failed.");
        expect(await snapshots("impostor")).toEqual([]);
    });

    it("leaves prune refusing, and list shows current as partial", async () => {
        const before = await snapshots("flaky");
        const dry = await runner.run(["prune", "flaky", "--dry-run"]);
        expect(dry.code, dry.stderr).toBe(0);
        expect(dry.stderr).toMatch(/runs have failed since .*: keeping every snapshot/);
        expect(dry.stderr).not.toContain("would delete");
        const real = await runner.run(["prune", "flaky"]);
        expect(real.code, real.stderr).toBe(0);
        expect(await snapshots("flaky")).toEqual(before);

        const list = await runner.run(["list", "flaky"]);
        expect(list.code, list.stderr).toBe(0);
        expect(list.stdout).toMatch(/^current\s+-\s+partial: the run at \S+ failed \(exit 10\)/m);
        for (const name of OLD) expect(list.stdout).toMatch(new RegExp(`^${name}\\s+\\S+\\s+complete$`, "m"));
    });

    it("is followed by a run that succeeds and then prunes by the policy", async () => {
        await writeJob("flaky", { preserve_min: "no", preserve: "no" });
        const plan = await runner.run(["prune", "flaky", "--dry-run"]);
        // Still refusing: the success has not happened yet.
        expect(plan.stderr).not.toContain("would delete");

        const r = await runner.run(["run", "flaky"]);
        expect(r.code, r.stderr).toBe(0);
        const after = await snapshots("flaky");
        // Only the snapshot just taken is left: the newest always stays.
        expect(after).toHaveLength(1);
        expect(after[0]).toBe((await runner.state("flaky")).last_snapshot);
        for (const name of OLD) expect(r.stderr).toContain(`delete ${name}: `);
        expect((await runner.state("flaky")).failing_since).toBe("");
    });
});

describe("prune", () => {
    it("--dry-run prints what would go and why, and deletes nothing", async () => {
        await writeJob("history", { preserve_min: "1d", preserve: "2d 1m" });
        expect(await runner.run(["run", "history"])).toMatchObject({ code: 0 });
        const names = ["2024-01-10T00:00:00Z", "2024-01-20T00:00:00Z", "2024-02-05T00:00:00Z", "2024-02-06T00:00:00Z"];
        await seedSnapshots("history", names);
        const before = await snapshots("history");
        // On 2024-02-06 at noon: Feb 5 and 6 are within 2d (first of their day),
        // Jan 10 is the first of January (1 month back), Jan 20 goes.
        const now = { PULLSNAP_NOW: "2024-02-06T12:00:00Z" };
        const dry = await runner.run(["prune", "history", "--dry-run"], now);
        expect(dry.code, dry.stderr).toBe(0);
        expect(dry.stderr).toContain("would delete 2024-01-20T00:00:00Z: 17d12h old, kept by no rule");
        expect(dry.stderr).toContain("keep 2024-01-10T00:00:00Z: first of its month (2024-01, 1 months back; preserve 1m)");
        expect(dry.stderr).toContain("keep 2024-02-05T00:00:00Z: first of its month (2024-02, 0 months back; preserve 1m)");
        expect(dry.stderr).toContain("keep 2024-02-06T00:00:00Z: newest snapshot");
        // The run's own snapshot is dated after "now" here, so it stays as a future one.
        expect(dry.stderr).toMatch(/keep \S+: dated .* in the future/);
        expect(await snapshots("history")).toEqual(before);

        const real = await runner.run(["prune", "history"], now);
        expect(real.code, real.stderr).toBe(0);
        expect(await snapshots("history")).toEqual(before.filter((n) => n !== "2024-01-20T00:00:00Z"));
    });
});

describe("locking and interruption", () => {
    it("exits 3 for a second run of a busy job, lets other jobs run, and recovers from a killed rsync", async () => {
        await bash('mkdir -p "$1/slow" && head -c 48M /dev/urandom >"$1/slow/file.bin"', src);
        await writeJob("slow", { path: "/srv/slow", bwlimit: "4000" });
        const first = runner.start(["run", "slow"]);
        running.push(first);
        // Wait until rsync is writing into current.
        const partial = path.join(mount, "slow/current/srv/slow/file.bin");
        await waitFor(
            "a partial transfer",
            async () => ((await fs.stat(partial).catch(() => undefined))?.size ?? 0) > 4 << 20 || undefined,
        );

        const second = await runner.run(["run", "slow"]);
        expect(second.code, second.stderr).toBe(3);
        expect(second.stderr).toContain("job slow is already running");
        const other = await runner.run(["run", "main"]);
        expect(other.code, other.stderr).toBe(0);

        const rsyncs = (await descendants(first.child.pid!)).filter((p) => p.comm === "rsync");
        expect(rsyncs.length).toBeGreaterThan(0);
        for (const p of rsyncs) process.kill(p.pid, "SIGKILL");
        const killed = await first.done;
        expect(killed.code, killed.stderr).toBe(10);
        expect(killed.stderr).toContain("no snapshot taken");
        expect(await snapshots("slow")).toEqual([]);
        expect((await fs.stat(partial)).size).toBeLessThan(48 << 20);

        await writeJob("slow", { path: "/srv/slow" });
        const again = await runner.run(["run", "slow"]);
        expect(again.code, again.stderr).toBe(0);
        const [snap] = await snapshots("slow");
        expect(await bash('sha256sum <"$1"', path.join(mount, "slow/snapshots", snap, "srv/slow/file.bin"))).toBe(
            await bash('sha256sum <"$1"', path.join(src, "slow/file.bin")),
        );
        await fs.rm(path.join(src, "slow"), { recursive: true });
    });
});

describe("restore", () => {
    it("round-trips a tree byte for byte, with owners, modes, ACLs, xattrs and hard links", async () => {
        expect(await runner.run(["run", "main"])).toMatchObject({ code: 0 });
        const target = path.join(dir, "restored");
        const r = await runner.run(["restore", "main", "latest", "/srv", target]);
        expect(r.stderr).toContain("restored /srv to");
        expect(r.code, r.stderr).toBe(0);
        expect(await manifest(target, NOT_PULLED)).toBe(await manifest(src, NOT_PULLED));
        expect(await fs.readFile(path.join(target, "root/secret"), "utf8")).toBe("only root reads this\n");
        // Still sparse: the 64 MiB image holds one block of data.
        expect(Number(await bash('du -k "$1" | cut -f1', path.join(target, "var/sparse.img")))).toBeLessThan(1024);
    });

    it("refuses to overwrite without --force, and overwrites with it", async () => {
        const target = path.join(dir, "shadow-copy");
        await fs.writeFile(target, "something else\n");
        const refused = await runner.run(["restore", "main", "latest", "/srv/etc/shadow", target]);
        expect(refused.code, refused.stderr).toBe(1);
        expect(refused.stderr).toContain(`${target} exists; add --force`);
        expect(await fs.readFile(target, "utf8")).toBe("something else\n");

        const forced = await runner.run(["restore", "main", "latest", "/srv/etc/shadow", target, "--force"]);
        expect(forced.code, forced.stderr).toBe(0);
        expect(await fs.readFile(target)).toEqual(await fs.readFile(path.join(src, "etc/shadow")));
        expect((await fs.stat(target)).mode & 0o7777).toBe(0o600);
        expect(await bash('getfattr -n user.binary -e hex --only-values "$1" | od -An -tx1', target)).toContain("00 ff 10");
    });

    it("refuses paths that climb out, and symlinks on the way", async () => {
        const [snap] = await snapshots("main");
        const target = path.join(dir, "nope");
        const climb = await runner.run(["restore", "main", snap, "/srv/../etc", target]);
        expect(climb.code, climb.stderr).toBe(2);
        const viaLink = await runner.run(["restore", "main", snap, "/srv/home/alice/absolute-link/x", target]);
        expect(viaLink.code, viaLink.stderr).toBe(1);
        expect(viaLink.stderr).toContain("/srv/home/alice/absolute-link is a symbolic link in the snapshot");
        const badName = await runner.run(["restore", "main", "../main", "/srv", target]);
        expect(badName.code, badName.stderr).toBe(2);
        await expect(fs.stat(target)).rejects.toThrow();
    });
});

describe("status and list", () => {
    it("exits 1 when a job's last success is older than its max_age", async () => {
        await writeJob("main", { max_age: "1h" });
        const fresh = await runner.run(["status", "main"]);
        expect(fresh.code, fresh.stderr).toBe(0);
        expect(fresh.stdout).toMatch(/^main\s+\S+Z\s+\S+\s+1h\s+ok\s+\d+\s+-$/m);

        const last = Number((await runner.state("main")).last_success);
        const later = await runner.run(["status", "main"], { PULLSNAP_NOW: String(last + 2 * 3600) });
        expect(later.code, later.stderr).toBe(1);
        expect(later.stdout).toMatch(/^main\s+\S+Z\s+2h0m\s+1h\s+STALE\s+\d+\s+-$/m);

        // A job that never succeeded is stale too; status covers all jobs by default.
        await writeJob("never", { source_port: "1" });
        const all = await runner.run(["status"]);
        expect(all.code, all.stderr).toBe(1);
        expect(all.stdout).toMatch(/^never\s+-\s+-\s+36h\s+STALE\s+0\s+never succeeded$/m);
    });

    it("lists snapshots with their age and marks the newest", async () => {
        const names = await snapshots("main");
        const r = await runner.run(["list", "main"]);
        expect(r.code, r.stderr).toBe(0);
        const lines = r.stdout.trim().split("\n");
        expect(lines[0]).toMatch(/^SNAPSHOT\s+AGE\s+STATE$/);
        expect(lines.slice(1, -1).map((l) => l.split(/\s+/)[0])).toEqual(names);
        expect(lines.at(-2)).toMatch(/complete, newest$/);
        expect(lines.at(-1)).toMatch(new RegExp(`^current\\s+-\\s+same as ${names.at(-1)}$`));
    });
});

describe("the sandbox", () => {
    it("keeps an exploited rsync client from touching snapshots, state or anything outside current", async () => {
        const evil = path.join(dir, "evil-rsync");
        // Stands in for an rsync client a malicious source took over: it tries what
        // root could do, and reports into current (its last argument).
        await fs.writeFile(
            evil,
            `#!/bin/bash
dest=\${!#}
job=$(dirname "$dest")
try() { if "$@" >/dev/null 2>&1; then echo "ALLOWED: $*"; else echo "denied: $*"; fi; }
{
for s in "$job"/snapshots/*; do
    try btrfs property set -ts "$s" ro false
    try btrfs subvolume delete "$s"
    try touch "$s/srv/planted"
done
try touch "$job/snapshots/planted"
try touch "$PULLSNAP_STATE_DIR/main/state"
try touch "$job/planted"
try touch /etc/pullsnap-planted
try umount -l "$job"
try mount -o remount,rw "$job"
try mknod "$dest/disk" b 7 0
grep Cap /proc/self/status
} >"$dest/evil.log" 2>&1
echo "Total bytes received: 1"
`,
            { mode: 0o755 },
        );
        const before = await snapshots("main");
        const snap = path.join(mount, "main/snapshots", before[0]);
        const contentBefore = await manifest(snap);
        const r = await runner.run(["run", "main"], { PULLSNAP_RSYNC: evil });
        expect(r.code, r.stderr).toBe(0);
        const log = await fs.readFile(path.join(mount, "main/current/evil.log"), "utf8");
        expect(log).toContain("denied: btrfs property set");
        expect(log).toContain("denied: mknod");
        expect(log).not.toContain("ALLOWED");
        // chown, dac_override, dac_read_search, fowner, fsetid and setfcap only.
        expect(log).toMatch(/^CapBnd:\s+000000008000001f$/m);
        expect(log).toMatch(/^CapEff:\s+000000008000001f$/m);
        expect(await must("btrfs", ["property", "get", "-ts", snap, "ro"])).toBe("ro=true\n");
        expect(await manifest(snap)).toBe(contentBefore);
        await expect(fs.stat("/etc/pullsnap-planted")).rejects.toThrow();
        await fs.rm(path.join(mount, "main/current/evil.log"));
    });

    it("needs CAP_SYS_ADMIN only to delete snapshots, which is why the unit keeps it", async () => {
        const withoutSysAdmin = ["--bounding-set=-sys_admin", "--inh-caps=-all", "--"];
        const current = path.join(mount, "main/current");
        const probe = path.join(mount, "main/snapshots/1999-01-01T00:00:00Z");
        expect((await run("setpriv", [...withoutSysAdmin, "btrfs", "-q", "subvolume", "snapshot", "-r", current, probe])).code).toBe(0);
        const denied = await run("setpriv", [...withoutSysAdmin, "btrfs", "-q", "subvolume", "delete", probe]);
        expect(denied.code).not.toBe(0);
        expect(denied.stderr).toContain("Operation not permitted");
        expect((await run("btrfs", ["-q", "subvolume", "delete", "--commit-after", probe])).code).toBe(0);
    });

    it("fails clearly when the mount is not a Btrfs volume", async () => {
        const plain = path.join(dir, "not-btrfs");
        await fs.mkdir(plain);
        await writeJob("elsewhere", { mount: plain });
        const r = await runner.run(["run", "elsewhere"]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toMatch(/mount=\S+not-btrfs is on \S+, not Btrfs \(is the backup volume mounted\?\)/);
    });
});
