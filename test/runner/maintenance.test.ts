// The volume's upkeep on a real Btrfs volume: a failed run alerts, scrub records its
// result and metrics and refuses to overlap, status sums up jobs, volume, scrub and
// SMART, a corrupted block is found; and the maintenance units pass systemd's checks.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { AlertListener, bash, freePort, LoopVolume, must, run, RUNNER, Runner, start, tempDir, unitDirectives, waitFor } from "./harness";
import { renderUnit } from "../../components/remoteScript";

const TEMPLATES = path.resolve(__dirname, "../../hosts/backup-server");

let dir: string;
let volume: LoopVolume;
let listener: AlertListener;
let runner: Runner;
let metricsDir: string;
let smartctl: string;

beforeAll(async () => {
    dir = await tempDir("pullsnap-maintenance-");
    volume = await LoopVolume.create(dir, "volume", 300);
    listener = await AlertListener.start();
    runner = await Runner.create(dir);
    metricsDir = path.join(dir, "metrics");
    await fs.mkdir(metricsDir);
    // A stand-in for smartctl: the health the test asks for, with smartctl's exit bits.
    smartctl = path.join(dir, "smartctl");
    await fs.writeFile(
        smartctl,
        [
            "#!/bin/sh",
            'echo "smartctl 7.3 (fake) $*"',
            'case "$2" in',
            '/dev/sdy) echo "Smartctl open device: /dev/sdy failed: No such device"; exit 2 ;;',
            "esac",
            'echo "SMART overall-health self-assessment test result: $FAKE_SMART_HEALTH"',
            '[ "$FAKE_SMART_HEALTH" = PASSED ] || exit 8',
            "",
        ].join("\n"),
        { mode: 0o755 },
    );
    await runner.writeServerConfig({
        mount: volume.mountpoint,
        drive: ["/dev/sdx", "/dev/sdy"],
        metrics_dir: metricsDir,
        alert_format: "slack",
        alert_url: `${listener.url}/hook`,
    });
    await fs.writeFile(path.join(runner.configDir, "id_ed25519"), "");
    await fs.writeFile(path.join(runner.configDir, "known_hosts"), "");
});

afterAll(async () => {
    await listener?.stop();
    await volume?.destroy();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

function textOf(body: string): string {
    return (JSON.parse(body) as { text: string }).text;
}

const healthy = { PULLSNAP_SMARTCTL: "", FAKE_SMART_HEALTH: "PASSED" };

describe("a failed run", () => {
    it("alerts once with the job's name and the reason, and the notify hook still runs", async () => {
        const hookLog = path.join(dir, "notify.log");
        const hook = path.join(dir, "notify-hook");
        await fs.writeFile(hook, `#!/bin/sh\necho "$*" >>'${hookLog}'\n`, { mode: 0o755 });
        const down = await freePort();
        await runner.writeJob("main", { source_host: "127.0.0.1", source_port: String(down), mount: volume.mountpoint, notify: hook });
        listener.take();
        const r = await runner.run(["run", "main"]);
        expect(r.code, r.stderr).toBe(10);
        const alerts = listener.take();
        expect(alerts).toHaveLength(1);
        expect(textOf(alerts[0].body)).toMatch(/^pullsnap@\S+: backup job main failed: transfer failed: ssh failed: .*Connection refused/);
        expect(await fs.readFile(hookLog, "utf8")).toMatch(/^main 10 transfer failed: /);
    });
});

describe("scrub", () => {
    it("scrubs the volume, records a clean result, writes metrics, and status says clean", async () => {
        await bash('head -c 8M /dev/urandom >"$1/data.bin" && sync', volume.mountpoint);
        listener.take();
        const r = await runner.run(["scrub"], { PULLSNAP_NOW: "2024-05-01T03:00:00Z" });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/scrub of .*: no errors in \d+\.\dMiB/);
        expect(listener.take()).toEqual([]);

        const state = await fs.readFile(path.join(runner.stateDir, "volume", "scrub"), "utf8");
        expect(state).toContain(`mount=${volume.mountpoint}\n`);
        expect(state).toContain("exit=0\nresult=clean\nerrors=0\nuncorrectable=0\n");
        expect(state).toContain(`end=${Date.UTC(2024, 4, 1, 3) / 1000}\n`);
        expect(Number(/^bytes=(\d+)$/m.exec(state)![1])).toBeGreaterThan(8 * 1024 * 1024);

        const metrics = await fs.readFile(path.join(metricsDir, "pullsnap_volume.prom"), "utf8");
        expect(metrics).toContain(`pullsnap_scrub_last_end_timestamp_seconds ${Date.UTC(2024, 4, 1, 3) / 1000}\n`);
        expect(metrics).toContain("pullsnap_scrub_last_exit_code 0\n");
        expect(metrics).toContain("pullsnap_scrub_errors 0\n");
        expect(metrics).toMatch(/^pullsnap_scrub_duration_seconds \d+$/m);
        expect(metrics).toContain(`pullsnap_volume_device_size_bytes{device="${volume.device}"} ${300 * 1024 * 1024}\n`);
        const used = Number(new RegExp(`^pullsnap_volume_device_used_bytes\\{device="${volume.device}"\\} (\\d+)$`, "m").exec(metrics)![1]);
        expect(used).toBeGreaterThan(8 * 1024 * 1024);
        expect(used).toBeLessThanOrEqual(300 * 1024 * 1024);
        // Every sample has a TYPE line before it, as the textfile collector wants.
        for (const name of new Set(
            metrics
                .split("\n")
                .filter((l) => l && !l.startsWith("#"))
                .map((l) => l.split(/[{ ]/)[0]),
        )) {
            expect(metrics).toContain(`# TYPE ${name} gauge\n`);
        }

        const status = await runner.run(["status"], { ...healthy, PULLSNAP_SMARTCTL: smartctl, PULLSNAP_NOW: "2024-05-02T03:00:00Z" });
        expect(status.stdout).toMatch(/^SCRUB \S+: clean, ended 2024-05-01T03:00:00Z \(1d0h ago\): no errors in /m);
    });

    it("refuses to start while another scrub holds the lock", async () => {
        const lock = path.join(runner.stateDir, "volume", "scrub.lock");
        // One process holds the lock, so stopping it frees the lock at once. It waits
        // for the lock: the probe below takes it for an instant.
        const holder = start("bash", ["-c", 'exec 9>>"$1" && flock 9 && exec sleep 30', "bash", lock]);
        try {
            await waitFor("the lock to be held", async () => ((await run("flock", ["-n", lock, "true"])).code === 1 ? true : undefined));
            const r = await runner.run(["scrub"]);
            expect(r.code).toBe(3);
            expect(r.stderr).toContain(`a scrub is already running (lock ${lock} is held)`);
        } finally {
            holder.child.kill("SIGTERM");
            await holder.done;
        }
    });
});

describe("status", () => {
    it("counts each job's snapshots and lists the volume's devices and the drives' health", async () => {
        expect((await runner.run(["init", "main"])).code).toBe(0);
        const job = path.join(volume.mountpoint, "main");
        for (const name of ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "not-a-snapshot"]) {
            await must("btrfs", ["-q", "subvolume", "snapshot", "-r", path.join(job, "current"), path.join(job, "snapshots", name)]);
        }
        const r = await runner.run(["status"], { ...healthy, PULLSNAP_SMARTCTL: smartctl });
        // main has never succeeded: stale.
        expect(r.code, r.stderr).toBe(1);
        expect(r.stdout).toMatch(/^JOB\s+LAST SUCCESS\s+AGE\s+MAX AGE\s+STATE\s+SNAPSHOTS\s+LAST ERROR$/m);
        expect(r.stdout).toMatch(/^main\s+-\s+-\s+36h\s+STALE\s+2\s+transfer failed: /m);
        expect(r.stdout).toMatch(new RegExp(`^VOLUME ${volume.mountpoint}: 300\\.0MiB, \\S+ used, \\S+ free \\(estimated\\)$`, "m"));
        expect(r.stdout).toMatch(new RegExp(`^${volume.device}\\s+300\\.0MiB\\s+\\d+\\.\\dMiB$`, "m"));
        expect(r.stdout).toMatch(/^\/dev\/sdx\s+PASSED\s+-$/m);
        expect(r.stdout).toMatch(/^\/dev\/sdy\s+unavailable: Smartctl open device: \/dev\/sdy failed: No such device\s+-$/m);
    });

    it("exits 1 and shows FAILED when a drive's SMART health failed, and 0 once all is well", async () => {
        // A success a minute ago, so only the drives decide.
        const state = await runner.state("main");
        const now = Math.floor(Date.now() / 1000);
        await fs.writeFile(
            path.join(runner.stateDir, "main", "state"),
            Object.entries({ ...state, last_success: String(now - 60), failing_since: "", last_error: "" })
                .map(([k, v]) => `${k}=${v}\n`)
                .join(""),
        );
        const ok = await runner.run(["status"], { ...healthy, PULLSNAP_SMARTCTL: smartctl });
        expect(ok.code, ok.stdout + ok.stderr).toBe(0);
        expect(ok.stdout).toMatch(/^main\s+\S+Z\s+1m0s\s+36h\s+ok\s+2\s+-$/m);

        const failed = await runner.run(["status"], { PULLSNAP_SMARTCTL: smartctl, FAKE_SMART_HEALTH: "FAILED!" });
        expect(failed.code).toBe(1);
        expect(failed.stdout).toMatch(/^\/dev\/sdx\s+FAILED\s+-$/m);
    });

    it('shows "-" snapshots when the volume is not mounted', async () => {
        const other = await Runner.create(path.join(dir, "unmounted"));
        await other.writeJob("away", { source_host: "10.0.2.2", mount: path.join(dir, "nowhere") });
        const r = await other.run(["status"]);
        expect(r.stdout).toMatch(/^away\s+-\s+-\s+36h\s+STALE\s+-\s+never succeeded$/m);
        expect(r.stdout).toContain(`VOLUME ${path.join(dir, "nowhere")}: not mounted (or not Btrfs)`);
        expect(r.stdout).toMatch(/^SCRUB: never$/m);
    });
});

describe("a scrub that finds a corrupted block", () => {
    it("exits 1, alerts, records the errors, and status exits 1", async () => {
        // A recognisable block, overwritten on the device behind Btrfs's back.
        await bash('head -c 65536 <(yes PULLSNAPCORRUPTME) >"$1/victim" && sync', volume.mountpoint);
        const offset = Number((await bash('grep -boa -m1 PULLSNAPCORRUPTME "$1" | head -n1 | cut -d: -f1', volume.image)).trim());
        expect(offset).toBeGreaterThan(0);
        await bash('printf XXXXXXXXXXXXXXXX | dd of="$1" bs=1 seek="$2" conv=notrunc status=none && sync', volume.device, String(offset));
        await bash("echo 3 >/proc/sys/vm/drop_caches");
        listener.take();

        const r = await runner.run(["scrub"]);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/error: scrub of \S+ found 1 errors \(1 uncorrectable, 0 corrected\)/);
        const alerts = listener.take();
        expect(alerts).toHaveLength(1);
        expect(textOf(alerts[0].body)).toMatch(/: scrub of \S+ found 1 errors \(1 uncorrectable, 0 corrected\) in /);
        const metrics = await fs.readFile(path.join(metricsDir, "pullsnap_volume.prom"), "utf8");
        expect(metrics).toContain("pullsnap_scrub_errors 1\n");
        expect(metrics).toContain("pullsnap_scrub_last_exit_code 3\n");

        const status = await runner.run(["status"], { ...healthy, PULLSNAP_SMARTCTL: smartctl });
        expect(status.code).toBe(1);
        expect(status.stdout).toMatch(/^SCRUB \S+: 1 errors, ended /m);
    });
});

describe("pullsnap-scrub and pullsnap-watch units", () => {
    const names = ["pullsnap-scrub.service", "pullsnap-scrub.timer", "pullsnap-watch.service", "pullsnap-watch.timer"];

    async function renderAll(metricsDir: string): Promise<Record<string, string>> {
        const values = { RUNNER, CONFIG_DIR: "/etc/pullsnap", MOUNT: "/plus/backup", METRICS_DIR: metricsDir, SCRUB_SCHEDULE: "monthly" };
        const units: Record<string, string> = {};
        for (const name of names) units[name] = renderUnit(await fs.readFile(path.join(TEMPLATES, `${name}.in`), "utf8"), values);
        return units;
    }

    it.each([["/var/lib/prometheus/node-exporter"], [""]])("render to units systemd accepts (metrics dir %j)", async (metricsDir) => {
        const units = await renderAll(metricsDir);
        const unitDir = await fs.mkdtemp(path.join(dir, "units-"));
        for (const name of names) await fs.writeFile(path.join(unitDir, name), units[name]);
        const r = await run("systemd-analyze", ["verify", "--man=no", ...names], { cwd: unitDir });
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        expect(unitDirectives(units["pullsnap-scrub.service"]).get("ReadWritePaths")).toEqual([`/plus/backup ${metricsDir}`]);
    });

    it("sandboxes both, with a reason beside each relaxation", async () => {
        const units = await renderAll("");
        const scrub = unitDirectives(units["pullsnap-scrub.service"]);
        const watch = unitDirectives(units["pullsnap-watch.service"]);
        expect(scrub.get("ExecStart")).toEqual([`${RUNNER} scrub`]);
        expect(watch.get("ExecStart")).toEqual([`${RUNNER} watch`]);
        for (const d of [scrub, watch]) {
            expect(d.get("ProtectSystem")).toEqual(["strict"]);
            expect(d.get("PrivateTmp")).toEqual(["yes"]);
            expect(d.get("ProtectHome")).toEqual(["yes"]);
            expect(d.get("NoNewPrivileges")).toEqual(["yes"]);
            expect(d.get("RestrictAddressFamilies")).toEqual(["AF_UNIX AF_INET AF_INET6"]);
            expect(d.get("Environment")).toEqual(["PULLSNAP_CONFIG_DIR=/etc/pullsnap"]);
        }
        expect(scrub.get("CapabilityBoundingSet")).toEqual(["CAP_SYS_ADMIN"]);
        expect(watch.get("CapabilityBoundingSet")).toEqual([""]);
        expect(scrub.get("IOSchedulingClass")).toEqual(["idle"]);
        expect(watch.get("StateDirectory")).toEqual(["pullsnap"]);
        const lines = units["pullsnap-scrub.service"].split("\n");
        for (const relaxed of [
            "StateDirectory=pullsnap/volume btrfs",
            "ReadWritePaths=/plus/backup ",
            "CapabilityBoundingSet=CAP_SYS_ADMIN",
        ]) {
            const at = lines.indexOf(relaxed);
            expect(at, relaxed).toBeGreaterThan(0);
            expect(lines.slice(at - 3, at).join("\n"), relaxed).toMatch(/# Relaxation: /);
        }
        for (const name of ["pullsnap-scrub.timer", "pullsnap-watch.timer"]) {
            const t = unitDirectives(units[name]);
            expect(t.get("Persistent"), name).toEqual(["true"]);
            expect(t.get("RandomizedDelaySec"), name).toHaveLength(1);
            expect(t.get("WantedBy"), name).toEqual(["timers.target"]);
        }
        expect(unitDirectives(units["pullsnap-scrub.timer"]).get("OnCalendar")).toEqual(["monthly"]);
        expect(unitDirectives(units["pullsnap-watch.timer"]).get("OnCalendar")).toEqual(["hourly"]);
    });
});
