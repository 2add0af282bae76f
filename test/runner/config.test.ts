// The runner's job config is data: every bad value exits 2 with a message naming the
// key, the value and what is allowed; every problem is reported at once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { Runner, tempDir } from "./harness";

let dir: string;
let runner: Runner;

const GOOD = {
    source_host: "10.0.2.2",
    source_port: "2222",
    mount: "/plus/backup",
};

beforeAll(async () => {
    dir = await tempDir("pullsnap-config-");
    runner = await Runner.create(dir);
});

afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
});

describe("check", () => {
    it("prints every setting with the defaults filled in", async () => {
        await runner.writeJob("main", { ...GOOD, path: ["/", "/home/"], exclude: ["/var/cache", "*.tmp"] });
        const r = await runner.run(["check", "main"]);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        expect(r.stdout).toBe(
            [
                "source_host=10.0.2.2",
                "source_port=2222",
                "source_user=rsyncr",
                `ssh_key=${runner.configDir}/id_ed25519`,
                `known_hosts=${runner.configDir}/known_hosts`,
                "path=/",
                "path=/home",
                "exclude=/var/cache",
                "exclude=*.tmp",
                "mount=/plus/backup",
                "preserve_min=2d",
                "preserve=24h 7d 4w 12m *y",
                "max_age=36h",
                "metrics_dir=",
                "notify=",
                "bwlimit=",
                "",
            ].join("\n"),
        );
    });

    it("ignores comments, blank lines and spaces around keys and values", async () => {
        const file = path.join(runner.configDir, "jobs", "spaced.conf");
        await fs.writeFile(
            file,
            "# a comment\n\n  source_host = example.org  \n\tmount=/plus/backup\n   # indented comment\npreserve = 7d *m\n",
        );
        const r = await runner.run(["check", "spaced"]);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain("source_host=example.org\n");
        expect(r.stdout).toContain("preserve=7d *m\n");
    });

    it.each([
        ["source_host", "-oProxyCommand=x", "source_host='-oProxyCommand=x': expected a host name, an IPv4 or an IPv6 address"],
        ["source_host", "a b", "source_host='a b': expected a host name"],
        ["source_port", "0", "source_port='0': expected a port number 1-65535"],
        ["source_port", "65536", "source_port='65536': expected a port number 1-65535"],
        ["source_port", "22a", "source_port='22a': expected a port number 1-65535"],
        ["source_user", "Root!", "source_user='Root!': expected a user name"],
        ["ssh_key", "id_ed25519", "ssh_key='id_ed25519': expected an absolute path without spaces"],
        ["known_hosts", "/etc/pull snap/kh", "known_hosts='/etc/pull snap/kh': expected an absolute path without spaces"],
        ["path", "home", "path='home': expected an absolute path on the source without '.' or '..' parts"],
        ["path", "/srv/../etc", "path='/srv/../etc': expected an absolute path on the source"],
        ["exclude", "", "exclude='': expected an rsync pattern"],
        ["mount", "/", "mount='/': expected an absolute path other than / without spaces"],
        ["mount", "relative/dir", "mount='relative/dir': expected an absolute path other than /"],
        ["preserve_min", "2x", "preserve_min='2x': expected all, latest, no or a count with a unit h d w m y (e.g. 2d)"],
        ["preserve_min", "forever", "preserve_min='forever': expected all, latest, no"],
        ["preserve", "24h 7d 7d", "preserve='24h 7d 7d': expected no, or at most one each of Nh Nd Nw Nm Ny"],
        ["preserve", "7days", "preserve='7days': expected no, or at most one each"],
        ["preserve", "**y", "preserve='**y': expected no"],
        ["max_age", "36", "max_age='36': expected a number with a unit s min h d w (e.g. 36h)"],
        ["max_age", "1m", "max_age='1m': expected a number with a unit s min h d w"],
        ["metrics_dir", "metrics", "metrics_dir='metrics': expected an absolute path, or nothing"],
        ["notify", "curl -X POST", "notify='curl -X POST': expected an absolute path to a command"],
        ["bwlimit", "fast", "bwlimit='fast': expected a rate in KiB/s"],
        ["bwlimit", "-1", "bwlimit='-1': expected a rate in KiB/s"],
    ])("rejects %s=%j", async (key, value, message) => {
        const file = await runner.writeJob("bad", { ...GOOD, [key]: value });
        const r = await runner.run(["check", "bad"]);
        expect(r.code).toBe(2);
        expect(r.stdout).toBe("");
        expect(r.stderr).toContain(`[bad] error: ${file}:`);
        expect(r.stderr).toContain(message);
    });

    it("reports every problem at once, with line numbers", async () => {
        const file = path.join(runner.configDir, "jobs", "many.conf");
        await fs.writeFile(
            file,
            ["source_host=10.0.2.2", "source_port=99999", "mount=/plus/backup", "colour=blue", "mount=/other", "just words"].join("\n"),
        );
        const r = await runner.run(["check", "many"]);
        expect(r.code).toBe(2);
        const lines = r.stderr.trim().split("\n");
        expect(lines).toEqual([
            `[many] error: ${file}:4: unknown key 'colour' (allowed: source_host, source_port, source_user, ssh_key, known_hosts, path, exclude, mount, preserve_min, preserve, max_age, metrics_dir, notify, bwlimit)`,
            `[many] error: ${file}:5: mount is already set on line 3; only path and exclude may repeat`,
            `[many] error: ${file}:6: 'just words': expected key=value`,
            `[many] error: ${file}:2: source_port='99999': expected a port number 1-65535`,
        ]);
    });

    it("requires source_host and mount", async () => {
        const file = await runner.writeJob("empty", {});
        const r = await runner.run(["check", "empty"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`${file}: source_host is required`);
        expect(r.stderr).toContain(`${file}: mount is required`);
    });

    it("never runs the config as code", async () => {
        const marker = path.join(dir, "executed");
        const file = path.join(runner.configDir, "jobs", "sneaky.conf");
        await fs.writeFile(
            file,
            `source_host=10.0.2.2\nmount=/plus/backup\n$(touch ${marker})\nexclude=$(touch ${marker})\nexclude=\`touch ${marker}\`\n`,
        );
        const r = await runner.run(["check", "sneaky"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("expected key=value");
        await expect(fs.stat(marker)).rejects.toThrow();
    });
});

describe("the command line", () => {
    it("rejects a bad config with exit 2 before doing anything", async () => {
        await runner.writeJob("bad", { ...GOOD, preserve: "sometimes" });
        for (const command of [
            ["run", "bad"],
            ["prune", "bad"],
            ["list", "bad"],
            ["restore", "bad", "latest", "/", path.join(dir, "x")],
        ]) {
            const r = await runner.run(command);
            expect(r.code, command.join(" ")).toBe(2);
            expect(r.stderr).toContain("preserve='sometimes'");
        }
    });

    it("exits 2 for a missing config, a bad job name or a missing key file", async () => {
        expect((await runner.run(["run", "nosuchjob"])).code).toBe(2);
        const badName = await runner.run(["run", "../etc/passwd"]);
        expect(badName.code).toBe(2);
        expect(badName.stderr).toContain("job name '../etc/passwd'");
        await runner.writeJob("nokey", { ...GOOD, ssh_key: path.join(dir, "missing-key") });
        const noKey = await runner.run(["run", "nokey"]);
        expect(noKey.code).toBe(2);
        expect(noKey.stderr).toContain(`ssh_key=${dir}/missing-key: no such readable file`);
    });

    it("exits 2 for unknown commands and options", async () => {
        expect((await runner.run(["frobnicate"])).code).toBe(2);
        expect((await runner.run(["prune", "main", "--everything"])).code).toBe(2);
        expect((await runner.run(["run"])).code).toBe(2);
        expect((await runner.run(["restore", "main", "latest"])).code).toBe(2);
    });

    it.each(["run", "prune", "list", "status", "restore", "check", "init", "retention-plan"])(
        "%s --help prints its usage",
        async (command) => {
            const r = await runner.run([command, "--help"]);
            expect(r.code).toBe(0);
            expect(r.stdout).toMatch(new RegExp(`^Usage: pullsnap ${command}`));
        },
    );

    it("help documents every config key and the exit codes", async () => {
        const r = await runner.run(["help"]);
        expect(r.code).toBe(0);
        for (const key of [
            "source_host",
            "source_port",
            "source_user",
            "ssh_key",
            "known_hosts",
            "path",
            "exclude",
            "mount",
            "preserve_min",
            "preserve",
            "max_age",
            "metrics_dir",
            "notify",
            "bwlimit",
        ]) {
            expect(r.stdout).toMatch(new RegExp(`^  ${key}=`, "m"));
        }
        expect(r.stdout).toContain("Exit codes: 0 ok");
        expect(r.stdout).toContain("3 the job is already running, 10 transfer failed");
    });
});
