// The systemd unit templates the provisioner renders per job: every placeholder is
// filled, systemd accepts the result, and the sandbox is the one the issue asks for.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { run, RUNNER, tempDir, unitDirectives } from "./harness";
import { renderUnit } from "../../components/remoteScript";

const TEMPLATES = path.resolve(__dirname, "../../hosts/backup-server");

let dir: string;

async function renderBoth(metricsDir: string) {
    const values = {
        JOB: "main",
        ON_CALENDAR: "*-*-* 02:00:00",
        MOUNT: "/plus/backup",
        RUNNER,
        CONFIG_DIR: "/etc/pullsnap",
        METRICS_DIR: metricsDir,
    };
    const service = renderUnit(await fs.readFile(path.join(TEMPLATES, "backup_job.service.in"), "utf8"), values);
    const timer = renderUnit(await fs.readFile(path.join(TEMPLATES, "backup_job.timer.in"), "utf8"), values);
    return { service, timer };
}

beforeAll(async () => {
    dir = await tempDir("pullsnap-units-");
});

afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
});

describe("backup_job.service.in and backup_job.timer.in", () => {
    it.each([["/var/lib/prometheus/node-exporter"], [""]])("render to units systemd accepts (metrics dir %j)", async (metricsDir) => {
        const { service, timer } = await renderBoth(metricsDir);
        expect(service).not.toMatch(/@[A-Z_]+@/);
        expect(timer).not.toMatch(/@[A-Z_]+@/);
        await fs.writeFile(path.join(dir, "backup_main.service"), service);
        await fs.writeFile(path.join(dir, "backup_main.timer"), timer);
        const r = await run("systemd-analyze", ["verify", "--man=no", "backup_main.service", "backup_main.timer"], { cwd: dir });
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        expect(unitDirectives(service).get("ReadWritePaths")).toEqual([`/plus/backup/main ${metricsDir}`]);
    });

    it("sandboxes the pull as the issue asks, with a reason beside each relaxation", async () => {
        const { service, timer } = await renderBoth("");
        const d = unitDirectives(service);
        const one = (key: string) => {
            expect(d.get(key), key).toHaveLength(1);
            return d.get(key)![0];
        };
        expect(one("ExecStart")).toBe(`${RUNNER} run main`);
        expect(one("ExecStartPre")).toBe(`+${RUNNER} init main`);
        expect(one("ProtectSystem")).toBe("strict");
        expect(one("PrivateTmp")).toBe("yes");
        expect(one("ProtectHome")).toBe("yes");
        expect(one("ProtectKernelTunables")).toBe("yes");
        expect(one("ProtectKernelModules")).toBe("yes");
        expect(one("ProtectKernelLogs")).toBe("yes");
        expect(one("NoNewPrivileges")).toBe("yes");
        expect(one("RestrictAddressFamilies")).toBe("AF_UNIX AF_INET AF_INET6");
        expect(one("StateDirectory")).toBe("pullsnap/main");
        expect(one("Environment")).toBe("PULLSNAP_CONFIG_DIR=/etc/pullsnap");
        expect(one("CapabilityBoundingSet").split(" ").sort()).toEqual(
            [
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_DAC_READ_SEARCH",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_SETFCAP",
                "CAP_SETPCAP",
                "CAP_SYS_ADMIN",
            ].sort(),
        );
        // Each relaxation has a comment right above it.
        const lines = service.split("\n");
        for (const relaxed of ["RestrictNamespaces=mnt", "RestrictSUIDSGID=no", "SystemCallFilter=@system-service @mount"]) {
            const at = lines.indexOf(relaxed);
            expect(at, relaxed).toBeGreaterThan(0);
            expect(lines[at - 1], relaxed).toMatch(/^# Relaxation: /);
        }
        expect(service).toMatch(/# CAP_SYS_ADMIN deletes read-only snapshots/);

        const t = unitDirectives(timer);
        expect(t.get("OnCalendar")).toEqual(["*-*-* 02:00:00"]);
        expect(t.get("Persistent")).toEqual(["true"]);
        expect(t.get("RandomizedDelaySec")).toHaveLength(1);
        expect(t.get("WantedBy")).toEqual(["timers.target"]);
    });
});
