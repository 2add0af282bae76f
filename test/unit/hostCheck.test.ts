// The drift check's pure parts: report parsing and comparison, and the check
// scripts' report format, run here against a temp tree through their
// overridable paths. Whether the check sees real drift is proven in the lab
// (test/e2e/drift.test.ts).
import { spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { driftOf, joinReports, parseReport, repairCommand } from "../../components/hostCheck";
import { withCheck } from "../../components/hostConnection";
import { HOSTS_DIR, renderScript } from "../../components/remoteScript";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

describe("parseReport", () => {
    it("reads key<TAB>value lines; values keep their spaces and tabs", () => {
        expect(parseReport("gate\tabc root:root 755\nfstab\tUUID=1 /plus/backup\tbtrfs\n")).toEqual({
            gate: "abc root:root 755",
            fstab: "UUID=1 /plus/backup\tbtrfs",
        });
    });

    it("refuses a repeated item", () => {
        expect(() => parseReport("gate\ta\ngate\tb")).toThrow('check report repeats the item "gate"');
    });
});

describe("repairCommand", () => {
    // A repair session is the steps' repair lines, then the check, all read by `bash -s`.
    const session = (lines: string[]) =>
        spawnSync("bash", ["-s"], { input: `set -e\n${lines.join("\n")}\necho '{"report":"ok"}'\n`, encoding: "utf8" });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-repair-"));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("feeds a step its own stdin, sends its output to stderr, and leaves the session's script alone", () => {
        const got = path.join(dir, "got");
        const step = withCheck(
            renderScript({ stdinFile: "CONF", script: `cp "$CONF" ${got}; echo step-ran` }),
            renderScript({ script: "echo check-ran" }),
        );
        const plain = withCheck(renderScript({ script: "cat; echo plain-ran" }), renderScript({ script: "echo plain-check" }));
        const r = session([repairCommand(step, "alert_url=https://example.org/secret\n"), repairCommand(plain)]);
        expect(r.status, r.stderr).toBe(0);
        expect(fs.readFileSync(got, "utf8")).toBe("alert_url=https://example.org/secret\n");
        // Only the session's own report reaches stdout; the steps' lines and checks go to stderr.
        expect(r.stdout).toBe('{"report":"ok"}\n');
        expect(r.stderr.split("\n").filter(Boolean)).toEqual(["step-ran", "check-ran", "plain-ran", "plain-check"]);
    });
});

describe("driftOf", () => {
    it.each([
        { expected: "a\t1\nb\t2", observed: "a\t1\nb\t2", drift: {} },
        { expected: "a\t1\nb\t2", observed: "a\t1\nb\t3", drift: { b: 'host has "3"; expected "2"' } },
        { expected: "a\t1", observed: "a\t1\nc\tnew", drift: { c: 'host has "new"; expected "(nothing)"' } },
        { expected: "a\t1\nb\t2", observed: "b\t2", drift: { a: 'host has "(nothing)"; expected "1"' } },
    ])("$expected vs $observed", ({ expected, observed, drift }) => {
        expect(driftOf(parseReport(expected), parseReport(observed))).toEqual(drift);
    });

    it("joins the reports of a host's steps, skipping empty ones", () => {
        expect(joinReports(["runner\tx", "", "fstab\ty"])).toBe("runner\tx\nfstab\ty");
    });
});

describe("check scripts", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-check-test-"));
    afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

    function run(script: string, env: Record<string, string>): Record<string, string> {
        const r = spawnSync("bash", [path.join(HOSTS_DIR, script)], { env: { ...process.env, ...env }, encoding: "utf8" });
        expect(r.status, r.stderr).toBe(0);
        const lines = r.stdout.trim().split("\n");
        expect(lines).toHaveLength(1);
        return parseReport((JSON.parse(lines[0]) as { report: string }).report);
    }

    it("source: one item per managed thing, in a fixed order", () => {
        const libexec = path.join(root, "libexec");
        const home = path.join(root, "home");
        fs.mkdirSync(libexec);
        fs.mkdirSync(path.join(home, ".ssh"), { recursive: true });
        fs.writeFileSync(path.join(libexec, "rsync-gate"), "gate\n");
        fs.writeFileSync(path.join(home, "rsync"), "binary\n");
        fs.writeFileSync(path.join(root, "system-rsync"), "binary\n");
        fs.writeFileSync(path.join(home, ".ssh", "authorized_keys"), "restrict ssh-ed25519 AAAA\n");
        const report = run("source/check-source.sh", {
            HOME_DIR: home,
            LIBEXEC: libexec,
            SYSTEM_RSYNC: path.join(root, "system-rsync"),
            APT_HOOK_PATH: path.join(root, "80rsync-readcap"),
            PACMAN_HOOK_PATH: path.join(root, "rsync-readcap.hook"),
        });
        expect(Object.keys(report)).toEqual([
            "gate",
            "refresh_script",
            "package_hook",
            "rsyncr_account",
            "copy_dir",
            "copy_mode",
            "copy_caps",
            "copy_content",
            "authorized_keys",
            "ssh_dir",
        ]);
        expect(report.gate).toMatch(new RegExp(`^${sha256("gate\n")} \\S+:\\S+ 644$`));
        expect(report.refresh_script).toBe("missing missing");
        expect(report.package_hook).toBe("missing");
        expect(report.copy_caps).toBe("none");
        expect(report.copy_content).toBe("same-as-system-rsync");
        expect(report.authorized_keys).toMatch(
            new RegExp(`^${sha256("restrict ssh-ed25519 AAAA\n")} \\S+:\\S+ 644 (mutable|immutable|missing)$`),
        );
    });

    it("source: a different copy is reported, not hashed", () => {
        fs.writeFileSync(path.join(root, "home", "rsync"), "tampered\n");
        const report = run("source/check-source.sh", {
            HOME_DIR: path.join(root, "home"),
            LIBEXEC: path.join(root, "libexec"),
            SYSTEM_RSYNC: path.join(root, "system-rsync"),
        });
        expect(report.copy_content).toBe("differs");
    });

    it("backup server: each part only when asked for, jobs by name", () => {
        const config = path.join(root, "etc-pullsnap");
        fs.mkdirSync(path.join(config, "jobs"), { recursive: true });
        fs.writeFileSync(path.join(config, "jobs", "main.conf"), "mount=/plus/backup\n");
        fs.writeFileSync(path.join(root, "runner"), "#!/bin/bash\n");
        fs.writeFileSync(
            path.join(root, "fstab"),
            "UUID=1 / ext4 defaults 0 1\nUUID=2 /plus/backup btrfs nosuid,nodev,noexec,noatime 0 0\n",
        );
        const env = {
            CONFIG_DIR: config,
            RUNNER_PATH: path.join(root, "runner"),
            UNIT_DIR: root,
            FSTAB: path.join(root, "fstab"),
        };
        expect(run("backup-server/check-server.sh", env)).toEqual({});
        const all = run("backup-server/check-server.sh", { ...env, CHECK_RUNNER: "1", MOUNT_POINT: "/plus/backup", JOBS: "main" });
        expect(Object.keys(all)).toEqual([
            "runner",
            "config_dir",
            "backup_key",
            "fstab",
            "mount",
            "job_main_config",
            "job_main_known_hosts",
            "job_main_units",
            "job_main_timer",
        ]);
        expect(all.runner).toMatch(new RegExp(`^${sha256("#!/bin/bash\n")} `));
        expect(all.backup_key).toBe("missing");
        expect(all.fstab).toBe("UUID=2 /plus/backup btrfs nosuid,nodev,noexec,noatime 0 0");
        expect(all.mount).toBe("not-mounted");
        expect(all.job_main_config).toBe(sha256("mount=/plus/backup\n"));
        expect(all.job_main_units).toBe("missing missing");
    });

    it("backup server: refuses a job name that is not one", () => {
        const r = spawnSync("bash", [path.join(HOSTS_DIR, "backup-server/check-server.sh")], {
            env: { ...process.env, JOBS: "../etc" },
            encoding: "utf8",
        });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain('bad job name "../etc"');
    });
});
