// Alerts, the one channel for every notification: Slack's and Matrix's request shapes,
// JSON that survives any message, secrets kept off the command line, a dead channel
// that changes nothing, `watch` alerting once per stale episode, smartd's hook, and
// pullsnap.conf validated like a job's config.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { AlertListener, Runner, freePort, run, start, tempDir, waitFor } from "./harness";

const ROOM = "!room:example.org";
const TOKEN = "syt_secret_token_123";
const HOUR = 3600;

let dir: string;
let listener: AlertListener;

beforeAll(async () => {
    dir = await tempDir("pullsnap-alerts-");
    listener = await AlertListener.start();
});

afterAll(async () => {
    await listener?.stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** A runner of its own, so each describe sees only its own jobs and alerts. */
async function freshRunner(name: string): Promise<Runner> {
    const runner = await Runner.create(path.join(dir, name));
    listener.take();
    return runner;
}

function textOf(body: string): string {
    return (JSON.parse(body) as { text: string }).text;
}

async function writeState(runner: Runner, job: string, state: Record<string, string>) {
    await fs.mkdir(path.join(runner.stateDir, job), { recursive: true });
    const text = Object.entries(state)
        .map(([k, v]) => `${k}=${v}\n`)
        .join("");
    await fs.writeFile(path.join(runner.stateDir, job, "state"), text);
}

describe("slack", () => {
    let runner: Runner;

    beforeAll(async () => {
        runner = await freshRunner("slack");
        await runner.writeServerConfig({ mount: "/plus/backup", alert_format: "slack", alert_url: `${listener.url}/services/T0/B0/xyz` });
    });

    it("posts the message as JSON that survives quotes, backslashes, newlines and control characters", async () => {
        const nasty = 'disk "sda" at C:\\path\nsecond line\ttab \u0001 end';
        const r = await runner.run(["alert", nasty]);
        expect(r.code, r.stderr).toBe(0);
        const [request, ...more] = listener.take();
        expect(more).toEqual([]);
        expect(request.method).toBe("POST");
        expect(request.url).toBe("/services/T0/B0/xyz");
        expect(request.headers["content-type"]).toBe("application/json");
        expect(textOf(request.body)).toMatch(/^pullsnap@\S+: /);
        expect(textOf(request.body).replace(/^pullsnap@\S+: /, "")).toBe(nasty);
    });

    it("exits 1 with a warning when the channel answers with an error", async () => {
        listener.status = 500;
        try {
            const r = await runner.run(["alert", "hello"]);
            expect(r.code).toBe(1);
            expect(r.stderr).toMatch(/warning: alert not sent \(slack\): curl: \(22\) .*500/);
        } finally {
            listener.status = 200;
            listener.take();
        }
    });

    it("exits 2 when alerts are not configured", async () => {
        const bare = await freshRunner("bare");
        const r = await bare.run(["alert", "hello"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("alerts are not configured");
        expect(listener.take()).toEqual([]);
    });
});

describe("matrix", () => {
    let runner: Runner;

    beforeAll(async () => {
        runner = await freshRunner("matrix");
        await runner.writeServerConfig({
            mount: "/plus/backup",
            alert_format: "matrix",
            alert_url: `${listener.url}/`,
            alert_matrix_room: ROOM,
            alert_matrix_token: TOKEN,
        });
    });

    it("PUTs an m.text message into the room with the token, a new transaction id each time", async () => {
        expect((await runner.run(["alert", "first"])).code).toBe(0);
        expect((await runner.run(["alert", "second"])).code).toBe(0);
        const requests = listener.take();
        expect(requests).toHaveLength(2);
        const txns = requests.map((request) => {
            expect(request.method).toBe("PUT");
            expect(request.headers.authorization).toBe(`Bearer ${TOKEN}`);
            const m = /^\/_matrix\/client\/v3\/rooms\/%21room%3Aexample\.org\/send\/m\.room\.message\/([A-Za-z0-9._-]+)$/.exec(request.url);
            expect(m, request.url).not.toBeNull();
            return m![1];
        });
        expect(txns[0]).not.toBe(txns[1]);
        const bodies = requests.map((r) => JSON.parse(r.body) as { msgtype: string; body: string });
        expect(bodies.map((b) => b.msgtype)).toEqual(["m.text", "m.text"]);
        expect(bodies[0].body).toMatch(/^pullsnap@\S+: first$/);
        expect(bodies[1].body).toMatch(/^pullsnap@\S+: second$/);
    });

    it("keeps the token and the URL off curl's command line", async () => {
        const argvLog = path.join(dir, "curl-argv");
        const curl = path.join(dir, "curl-recording");
        await fs.writeFile(curl, `#!/bin/sh\nprintf '%s\\n' "$@" >>'${argvLog}'\nexec curl "$@"\n`, { mode: 0o755 });
        const r = await runner.run(["alert", "argv check"], { PULLSNAP_CURL: curl });
        expect(r.code, r.stderr).toBe(0);
        expect(listener.take()).toHaveLength(1);
        const argv = await fs.readFile(argvLog, "utf8");
        expect(argv).toContain("--max-time");
        expect(argv).not.toContain(TOKEN);
        expect(argv).not.toContain(String(listener.port));
    });
});

describe("a dead alert channel", () => {
    it("logs a warning and leaves the run's exit code alone", async () => {
        const runner = await freshRunner("dead");
        const down = await freePort();
        await runner.writeServerConfig({ mount: "/plus/backup", alert_format: "slack", alert_url: `http://127.0.0.1:${down}/hook` });
        // The volume is not there: the run fails with 1, before any pull.
        await runner.writeJob("main", { source_host: "127.0.0.1", mount: path.join(dir, "no-volume") });
        await fs.writeFile(path.join(runner.configDir, "id_ed25519"), "");
        await fs.writeFile(path.join(runner.configDir, "known_hosts"), "");
        const r = await runner.run(["run", "main"]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("no such folder (is the backup volume set up?)");
        expect(r.stderr).toMatch(/\[main\] warning: alert not sent \(slack\): curl: \(7\)/);
        expect((await runner.state("main")).last_exit).toBe("1");
    });
});

describe("a job that cannot start", () => {
    it("alerts with the errors it logged, from init and from run", async () => {
        const runner = await freshRunner("unstartable");
        await runner.writeServerConfig({ mount: "/plus/backup", alert_format: "slack", alert_url: `${listener.url}/hook` });
        await runner.writeJob("main", { source_host: "127.0.0.1", mount: "/plus/backup", max_age: "soon" });
        for (const command of ["init", "run"]) {
            const r = await runner.run([command, "main"]);
            expect(r.code).toBe(2);
            const [request, ...more] = listener.take();
            expect(more).toEqual([]);
            expect(textOf(request.body)).toMatch(/: backup job main could not start: .*max_age='soon': expected a number with a unit/);
        }
    });

    it("stays silent when another run holds the lock", async () => {
        const runner = await freshRunner("locked");
        await runner.writeServerConfig({ mount: "/plus/backup", alert_format: "slack", alert_url: `${listener.url}/hook` });
        await runner.writeJob("main", { source_host: "127.0.0.1", mount: "/plus/backup" });
        await fs.writeFile(path.join(runner.configDir, "id_ed25519"), "");
        await fs.writeFile(path.join(runner.configDir, "known_hosts"), "");
        const lock = path.join(runner.stateDir, "main", "lock");
        await fs.mkdir(path.dirname(lock), { recursive: true });
        // One process that holds the lock and is the one killed afterwards.
        const holder = start("bash", ["-c", 'exec 9>>"$1" && flock 9 && exec sleep 60', "holder", lock]);
        try {
            await waitFor("the lock to be held", async () => ((await run("flock", ["-n", lock, "true"])).code === 1 ? true : undefined));
            const r = await runner.run(["run", "main"]);
            expect(r.code).toBe(3);
            expect(listener.take()).toEqual([]);
        } finally {
            holder.child.kill();
            await holder.done;
        }
    });
});

describe("watch", () => {
    let runner: Runner;

    beforeAll(async () => {
        runner = await freshRunner("watch");
        await runner.writeServerConfig({ mount: "/plus/backup", alert_format: "slack", alert_url: `${listener.url}/hook` });
    });

    it("alerts once per stale episode; a new success starts the next", async () => {
        const t0 = 1_700_000_000;
        await runner.writeJob("main", { source_host: "10.0.2.2", mount: "/plus/backup", max_age: "1h" });
        await writeState(runner, "main", { last_success: String(t0), last_snapshot: "2023-11-14T22:13:20Z" });

        const fresh = await runner.run(["watch"], { PULLSNAP_NOW: String(t0 + 1800) });
        expect(fresh.code, fresh.stderr).toBe(0);
        expect(listener.take()).toEqual([]);

        const stale = await runner.run(["watch"], { PULLSNAP_NOW: String(t0 + 2 * HOUR) });
        expect(stale.code, stale.stderr).toBe(1);
        const alerts = listener.take();
        expect(alerts).toHaveLength(1);
        expect(textOf(alerts[0].body)).toMatch(/: backup job main is stale: last success 2023-11-14T22:13:20Z \(2h0m ago\), max_age 1h$/);
        expect((await runner.state("main")).stale_alerted).toBe(String(t0));

        const again = await runner.run(["watch"], { PULLSNAP_NOW: String(t0 + 3 * HOUR) });
        expect(again.code).toBe(1);
        expect(again.stderr).toContain("already alerted");
        expect(listener.take()).toEqual([]);

        // A success, then staleness again: a new episode.
        const state = await runner.state("main");
        await writeState(runner, "main", { ...state, last_success: String(t0 + 3 * HOUR) });
        expect((await runner.run(["watch"], { PULLSNAP_NOW: String(t0 + 3 * HOUR + 60) })).code).toBe(0);
        expect(listener.take()).toEqual([]);
        expect((await runner.run(["watch"], { PULLSNAP_NOW: String(t0 + 5 * HOUR) })).code).toBe(1);
        const next = listener.take();
        expect(next).toHaveLength(1);
        expect(textOf(next[0].body)).toContain("backup job main is stale: last success 2023-11-15T01:13:20Z (2h0m ago)");
    });

    it("counts a job that never succeeded from when its config was written", async () => {
        const file = await runner.writeJob("new", { source_host: "10.0.2.2", mount: "/plus/backup", max_age: "1h" });
        const written = Math.floor((await fs.stat(file)).mtimeMs / 1000);
        const now = written + 1800;
        // main stays stale, and already alerted.
        expect((await runner.run(["watch"], { PULLSNAP_NOW: String(now) })).code).toBe(1);
        expect(listener.take().map((r) => textOf(r.body))).toEqual([]);
        const r = await runner.run(["watch"], { PULLSNAP_NOW: String(written + 2 * HOUR) });
        expect(r.code).toBe(1);
        const texts = listener.take().map((request) => textOf(request.body));
        expect(texts).toHaveLength(1);
        expect(texts[0]).toMatch(/backup job new is stale: never succeeded; configured 2h0m ago, max_age 1h$/);
        expect((await runner.state("new")).stale_alerted).toBe("0");
        await fs.rm(file);
    });

    it("alerts once about an invalid config and exits 2", async () => {
        const file = path.join(runner.configDir, "jobs", "typo.conf");
        await fs.writeFile(file, "source_hots=10.0.2.2\n");
        const r = await runner.run(["watch"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("error: job typo: invalid config; run 'pullsnap check typo'");
        const texts = listener.take().map((request) => textOf(request.body));
        expect(texts.filter((t) => t.includes("typo"))).toEqual([expect.stringMatching(/backup job typo has an invalid config/)]);
        expect((await runner.run(["watch"])).code).toBe(2);
        expect(listener.take().filter((request) => textOf(request.body).includes("typo"))).toEqual([]);
        await fs.rm(file);
    });
});

describe("smartd-hook", () => {
    it("records smartd's warning, alerts it, and status shows it beside the drive's health", async () => {
        const runner = await freshRunner("smartd");
        const smartctl = path.join(dir, "smartctl-passed");
        await fs.writeFile(
            smartctl,
            '#!/bin/sh\necho "smartctl 7.3 (fake)"\necho "SMART overall-health self-assessment test result: PASSED"\n',
            { mode: 0o755 },
        );
        await runner.writeServerConfig({
            mount: path.join(dir, "no-volume"),
            drive: "/dev/sdz",
            alert_format: "slack",
            alert_url: `${listener.url}/hook`,
        });
        const message = "Device: /dev/sdz [SAT], 8 Currently unreadable (pending) sectors";
        const r = await runner.run(["smartd-hook"], {
            SMARTD_DEVICE: "/dev/sdz",
            SMARTD_DEVICETYPE: "sat",
            SMARTD_FAILTYPE: "CurrentPendingSector",
            SMARTD_MESSAGE: message,
            SMARTD_FULLMESSAGE: `This message was generated by the smartd daemon.\n${message}`,
            PULLSNAP_NOW: "2024-03-01T10:00:00Z",
        });
        expect(r.code, r.stderr).toBe(0);
        const alerts = listener.take();
        expect(alerts).toHaveLength(1);
        expect(textOf(alerts[0].body)).toMatch(
            new RegExp(`: SMART CurrentPendingSector on /dev/sdz: ${message.replace(/[()[\]]/g, "\\$&")}$`),
        );
        const record = await fs.readFile(path.join(runner.stateDir, "smart", "sdz"), "utf8");
        expect(record).toContain("failtype=CurrentPendingSector\n");
        expect(record).toContain(`message=${message}\n`);

        const status = await runner.run(["status"], { PULLSNAP_SMARTCTL: smartctl });
        expect(status.code, status.stderr).toBe(0);
        expect(status.stdout).toMatch(/^DRIVE\s+HEALTH\s+LAST SMARTD EVENT$/m);
        expect(status.stdout).toMatch(
            new RegExp(`^/dev/sdz\\s+PASSED\\s+2024-03-01T10:00:00Z CurrentPendingSector: Device: /dev/sdz`, "m"),
        );
    });

    it("refuses a device that is not under /dev", async () => {
        const runner = await freshRunner("smartd-bad");
        const r = await runner.run(["smartd-hook"], { SMARTD_DEVICE: "../../etc/passwd", SMARTD_FAILTYPE: "Health" });
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("SMARTD_DEVICE='../../etc/passwd': expected a device under /dev");
    });
});

describe("pullsnap.conf", () => {
    it("exits 2 naming every bad key, value and what is allowed, never the token", async () => {
        const runner = await freshRunner("config");
        const file = path.join(runner.configDir, "pullsnap.conf");
        await fs.writeFile(
            file,
            [
                "mount=/plus/backup",
                "alert_format=email",
                "alert_url=ftp://example.org",
                "colour=blue",
                "drive=sda",
                "alert_matrix_token=bad token",
                "",
            ].join("\n"),
        );
        const r = await runner.run(["status"]);
        expect(r.code).toBe(2);
        const problems = r.stderr.split("\n").filter((l) => l.startsWith("error: "));
        expect(problems).toEqual([
            `error: ${file}:4: unknown key 'colour' (allowed: mount, drive, metrics_dir, alert_format, alert_url, alert_matrix_room, alert_matrix_token)`,
            `error: ${file}:5: drive='sda': expected a whole drive under /dev, e.g. /dev/sda or /dev/disk/by-id/ata-...`,
            `error: ${file}:2: alert_format='email': expected slack, matrix, or nothing (no alerts)`,
            `error: ${file}:3: alert_url='ftp://example.org': expected an http:// or https:// URL without spaces or quotes`,
            `error: ${file}:6: alert_matrix_token (value not shown): expected an access token of letters, digits and ._~+/=-`,
        ]);
        expect(r.stderr).not.toContain("bad token");
    });

    it("requires the room, the token and the URL for matrix, and mount always", async () => {
        const runner = await freshRunner("config-matrix");
        const file = await runner.writeServerConfig({ alert_format: "matrix" });
        const r = await runner.run(["alert", "hello"]);
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split("\n")).toEqual([
            `error: ${file}: mount is required (where the Btrfs volume is mounted, e.g. /plus/backup)`,
            `error: ${file}: alert_url is required for alert_format=matrix (the homeserver's URL, e.g. https://matrix.example.org)`,
            `error: ${file}: alert_matrix_room is required for alert_format=matrix (a room id, e.g. !abcdef:example.org)`,
            `error: ${file}: alert_matrix_token is required for alert_format=matrix (the bot user's access token)`,
        ]);
    });

    it.each(["alert", "watch", "scrub", "smartd-hook"])("%s --help prints its usage", async (command) => {
        const runner = await freshRunner("help");
        const r = await runner.run([command, "--help"]);
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^Usage: pullsnap ${command}`));
    });
});
