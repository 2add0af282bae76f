// The resource graph of index.ts under Pulumi mocks: which remote steps exist,
// how outputs of one feed the next, and what each step would run. Whether the
// steps work is proven on the lab VMs (test/e2e), not here.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { sshConnection } from "../../components/hostConnection";
import { repairCommand } from "../../components/hostCheck";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const SLACK_URL = "https://hooks.slack.example/services/T000/B000/secret-token";
const BACKUP_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBackupServerKey";
const MAIN_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMainHostKey";
const WEB_HOST_KEY = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIWebHostKey";
const BACKUP_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBackupHostKey";

interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}
const resources: Recorded[] = [];

// What each remote step prints on stdout, keyed by resource name: its
// script's JSON line, then its check's report.
const step = (result: object, report: string) => `${JSON.stringify(result)}\n${JSON.stringify({ report })}\n`;
const stdoutByName: Record<string, string> = {
    "backup-runner": step({ publicKey: BACKUP_PUBLIC_KEY }, "runner\tr1\nbackup_key\troot:root 600"),
    "backup-volume-prepare": step({ uuid: "1234-uuid", devices: ["/dev/sda1", "/dev/sdb1"] }, "fstab\tUUID=1234-uuid /plus/backup"),
    "backup-maintenance-install": step({ timers: ["pullsnap-scrub.timer", "pullsnap-watch.timer"] }, "scrub_timer\tenabled active"),
    "main-source-rsyncr": step({}, "copy_caps\tcap_dac_read_search=ep"),
    "main-units": step({ timer: "backup_main.timer", service: "backup_main.service" }, "job_main_timer\tenabled active"),
    "web-source-rsyncr": step({}, "copy_caps\tcap_dac_read_search=ep web"),
    "web-units": step({ timer: "backup_web.timer", service: "backup_web.service" }, "job_web_timer\tenabled active"),
};

function find(type: string, name: string): Recorded {
    const found = resources.find((r) => r.type === type && r.name === name);
    if (!found) {
        throw new Error(`no ${type} named ${name}; have: ${resources.map((r) => `${r.type} ${r.name}`).join(", ")}`);
    }
    return found;
}
const command = (name: string) => find("command:remote:Command", name);
const HOST_CHECK = "pulumi-nodejs:dynamic/pullsnap:HostCheck";
const hostCheck = (name: string) => find(HOST_CHECK, name);
const unquote = (command: string) => command.replace(/'\\''/g, "'");
// How the mocks hand over a secret input: wrapped, with Pulumi's secret signature.
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const isSecretInput = (v: unknown): v is { value: unknown } => v !== null && typeof v === "object" && SECRET_SIG in v;
const reveal = (v: unknown): unknown => (isSecretInput(v) ? v.value : v);
/** The script a remote step runs, unwrapped from renderScript's `bash -c '...'` (its check included). */
const scriptOf = (name: string, phase: "create" | "delete" = "create") =>
    (reveal(command(name).inputs[phase]) as string)
        .replace(/^bash -c '/, "")
        .replace(/'$/, "")
        .replace(/'\\''/g, "'");

function promiseOf<T>(value: pulumi.Input<T>): Promise<pulumi.Unwrap<T>> {
    return new Promise((resolve) => pulumi.output(value).apply(resolve));
}

let program: Record<string, pulumi.Input<unknown>>;

beforeAll(async () => {
    pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                resources.push({ type: args.type, name: args.name, inputs: args.inputs });
                const stdout = stdoutByName[args.name] ?? "";
                return { id: `${args.name}-id`, state: { ...args.inputs, stdout, stderr: "" } };
            },
            call: () => ({}),
        },
        "pullsnap",
        "unit",
        false,
    );
    pulumi.runtime.setAllConfig(
        {
            "pullsnap:backupServer": JSON.stringify({
                connection: { host: "backup.example.org", privateKey: KEY, hostKey: BACKUP_HOST_KEY },
                drives: ["/dev/sda", "/dev/sdb"],
                metricsDir: "/var/lib/prometheus/node-exporter",
            }),
            "pullsnap:alerts": JSON.stringify({ format: "slack", url: SLACK_URL }),
            "pullsnap:jobs": JSON.stringify([
                {
                    name: "main",
                    connection: { host: "main.example.org", privateKey: KEY, hostKey: MAIN_HOST_KEY },
                    pullAddress: { host: "192.0.2.10", port: 2222 },
                    from: "192.0.2.20",
                    paths: ["/srv", "/etc"],
                    schedule: "*-*-* 02:30:00",
                },
                {
                    name: "web",
                    connection: { host: "web.example.org", privateKey: KEY, hostKey: WEB_HOST_KEY },
                    pullAddress: { host: "192.0.2.11" },
                },
            ]),
        },
        ["pullsnap:backupServer", "pullsnap:jobs", "pullsnap:alerts"],
    );
    program = await import("../../index");
    // Registrations are asynchronous; resolving every export waits for all of them.
    await Promise.all(Object.values(program).map((value) => promiseOf(value)));
    // Dynamic resources register after their provider is serialized; wait for the three checks.
    for (let i = 0; i < 200 && resources.filter((r) => r.type === HOST_CHECK).length < 3; i++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
    }
});

describe("the program", () => {
    it("declares one component per concept and one remote step per host task", () => {
        expect(resources.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
            [
                "pullsnap:index:BackupServer backup",
                "pullsnap:index:BtrfsVolume backup-volume",
                "pullsnap:index:Maintenance backup-maintenance",
                "command:remote:Command backup-maintenance-install",
                "pullsnap:index:SourceHost main-source",
                "pullsnap:index:BackupJob main",
                "command:remote:Command backup-runner",
                "command:remote:Command backup-volume-prepare",
                "command:remote:Command main-source-rsyncr",
                "command:remote:Command main-units",
                "pullsnap:index:SourceHost web-source",
                "pullsnap:index:BackupJob web",
                "command:remote:Command web-source-rsyncr",
                "command:remote:Command web-units",
                `${HOST_CHECK} backup-check`,
                `${HOST_CHECK} main-source-check`,
                `${HOST_CHECK} web-source-check`,
            ].sort(),
        );
    });

    it("ends every remote step with its part of the host check", () => {
        expect(scriptOf("backup-runner")).toMatch(/' && bash -c '[^]*CHECK_RUNNER='1'[^]*check-server: /);
        expect(scriptOf("backup-volume-prepare")).toMatch(/CHECK_RUNNER=''\nMOUNT_POINT='\/plus\/backup'\nCHECK_MAINTENANCE=''\nJOBS=\(\)/);
        expect(scriptOf("backup-maintenance-install")).toContain("CHECK_RUNNER=''\nMOUNT_POINT=''\nCHECK_MAINTENANCE='1'\nJOBS=()");
        expect(scriptOf("main-units")).toContain("CHECK_RUNNER=''\nMOUNT_POINT=''\nCHECK_MAINTENANCE=''\nJOBS=('main')");
        expect(scriptOf("main-source-rsyncr")).toContain("check-source: ");
    });

    it("checks the backup server once for all its steps, expecting what they reported", () => {
        const check = hostCheck("backup-check").inputs;
        expect(check.host).toBe("backup.example.org");
        expect(check.port).toBe(22);
        expect(check.user).toBe("root");
        // A secret, so the state keeps it encrypted.
        expect(check.privateKey).toEqual({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value: KEY });
        expect(unquote(check.checkScript as string)).toContain(
            "CHECK_RUNNER='1'\nMOUNT_POINT='/plus/backup'\nCHECK_MAINTENANCE='1'\nJOBS=('main' 'web')",
        );
        expect(check.expected).toBe(
            [
                "runner\tr1",
                "backup_key\troot:root 600",
                "fstab\tUUID=1234-uuid /plus/backup",
                "scrub_timer\tenabled active",
                "job_main_timer\tenabled active",
                "job_web_timer\tenabled active",
            ].join("\n"),
        );
        // Repairing re-runs the provisioning steps in their order, each with its own stdin.
        expect(reveal(check.repairScripts)).toEqual(
            ["backup-runner", "backup-volume-prepare", "backup-maintenance-install", "main-units", "web-units"].map((n) =>
                repairCommand(reveal(command(n).inputs.create) as string, reveal(command(n).inputs.stdin) as string | undefined),
            ),
        );
    });

    it("checks each source host against its own step's report", () => {
        for (const job of ["main", "web"]) {
            const check = hostCheck(`${job}-source-check`).inputs;
            expect(check.host).toBe(`${job}.example.org`);
            expect(check.expected).toBe(`copy_caps\tcap_dac_read_search=ep${job === "web" ? " web" : ""}`);
            expect(check.repairScripts).toEqual([`{ ${command(`${job}-source-rsyncr`).inputs.create as string}; } </dev/null >&2`]);
            expect(unquote(check.checkScript as string)).toContain("check-source: ");
        }
    });

    it("authorizes the backup server's generated key on the source, restricted", () => {
        const create = scriptOf("main-source-rsyncr");
        expect(create).toContain(`BACKUP_PUBLIC_KEY='${BACKUP_PUBLIC_KEY}'`);
        expect(create).toContain("FROM='192.0.2.20'");
        expect(create).toContain('options="restrict"');
        expect(create).toContain("cap_dac_read_search=ep");
    });

    it("hands the forced command the job's paths, and only them", () => {
        expect(scriptOf("main-source-rsyncr")).toContain("JOB_PATHS=('/srv' '/etc')");
        expect(scriptOf("main-source-rsyncr")).toContain('command=\\"$LIBEXEC/rsync-gate ${JOB_PATHS[*]}\\"');
        expect(scriptOf("web-source-rsyncr")).toContain("JOB_PATHS=('/')");
    });

    it("verifies every connection against the pinned host key", async () => {
        const connections = [
            ["backup-runner", BACKUP_HOST_KEY],
            ["backup-volume-prepare", BACKUP_HOST_KEY],
            ["backup-maintenance-install", BACKUP_HOST_KEY],
            ["main-units", BACKUP_HOST_KEY],
            ["web-units", BACKUP_HOST_KEY],
            ["main-source-rsyncr", MAIN_HOST_KEY],
            ["web-source-rsyncr", WEB_HOST_KEY],
        ];
        for (const [name, key] of connections) {
            const connection = reveal(command(name).inputs.connection) as { hostKey?: string };
            expect([name, connection.hostKey]).toEqual([name, key]);
        }
        expect(hostCheck("backup-check").inputs.hostKey).toBe(BACKUP_HOST_KEY);
        expect(hostCheck("main-source-check").inputs.hostKey).toBe(MAIN_HOST_KEY);
        expect(hostCheck("web-source-check").inputs.hostKey).toBe(WEB_HOST_KEY);
    });

    it("pins the source's host key for the pull address and renders the job", () => {
        const create = scriptOf("main-units");
        expect(create).toContain(`[192.0.2.10]:2222 ${MAIN_HOST_KEY}`);
        expect(create).toContain("source_host=192.0.2.10");
        expect(create).toContain("path=/srv\npath=/etc\n");
        expect(create).toContain("preserve=24h 7d 4w 12m *y");
        expect(create).toContain("OnCalendar=*-*-* 02:30:00");
        expect(create).not.toMatch(/@[A-Z_]+@/);
    });

    it("keeps several jobs apart: each its own source key pin, config and units", () => {
        const web = scriptOf("web-units");
        expect(web).toContain(`192.0.2.11 ${WEB_HOST_KEY}`);
        expect(web).not.toContain(MAIN_HOST_KEY);
        expect(web).toContain("JOB='web'");
        expect(web).toContain("known_hosts=/etc/pullsnap/known_hosts.d/web");
        expect(web).toContain("OnCalendar=daily");
        expect(scriptOf("web-source-rsyncr")).toContain(`BACKUP_PUBLIC_KEY='${BACKUP_PUBLIC_KEY}'`);
    });

    it("builds the seed's volume and never destroys it", () => {
        const create = scriptOf("backup-volume-prepare");
        expect(create).toContain("DRIVES=('/dev/sda' '/dev/sdb')");
        expect(create).toContain("METADATA_PROFILE='raid1'");
        expect(create).toContain("--nodesize 32k");
        // Destroying the volume only prints why nothing is removed.
        expect(command("backup-volume-prepare").inputs.delete).toMatch(/^echo "[^"$`;|&]*" >&2$/);
    });

    it("installs scrub, watch and smartd, alerting through the configured channel", () => {
        const create = scriptOf("backup-maintenance-install");
        const serverConfig = reveal(command("backup-maintenance-install").inputs.stdin) as string;
        expect(serverConfig).toContain(
            `mount=/plus/backup\ndrive=/dev/sda\ndrive=/dev/sdb\nmetrics_dir=/var/lib/prometheus/node-exporter\n`,
        );
        expect(serverConfig).toContain(`alert_format=slack\nalert_url=${SLACK_URL}\n`);
        expect(create).toContain(`SERVER_CONF="$PULLSNAP_PAYLOAD/SERVER_CONF"\ncat >"$SERVER_CONF"\n`);
        expect(create).toContain("OnCalendar=monthly");
        expect(create).toContain("-M exec /usr/local/lib/pullsnap/smartd-alert");
        expect(create).not.toMatch(/@[A-Z_]+@/);
        // Jobs write their metrics next to the scrub's, and may write there.
        expect(scriptOf("main-units")).toContain("metrics_dir=/var/lib/prometheus/node-exporter\n");
        expect(scriptOf("main-units")).toMatch(/ReadWritePaths=\/plus\/backup\/main \/var\/lib\/prometheus\/node-exporter/);
    });

    it("keeps the alert channel's URL a secret on the step's stdin and in the host check, never in a command", () => {
        // A failed command's error quotes the whole command (upstream @pulumi/command 1.2.1 does).
        expect(isSecretInput(command("backup-maintenance-install").inputs.create)).toBe(false);
        expect(isSecretInput(command("backup-maintenance-install").inputs.stdin)).toBe(true);
        expect(JSON.stringify(resources.map((r) => reveal(r.inputs.create)))).not.toContain("secret-token");
        expect(isSecretInput(hostCheck("backup-check").inputs.repairScripts)).toBe(true);
        // Nowhere else in plain text: every input holding it is a secret.
        const plainInputs = resources.flatMap((r) => Object.values(r.inputs).filter((v) => !isSecretInput(v)));
        expect(JSON.stringify(plainInputs)).not.toContain("secret-token");
        expect(JSON.stringify(resources)).toContain("secret-token");
    });

    it("removes what it installed on destroy", () => {
        expect(command("main-source-rsyncr").inputs.delete).toContain("userdel rsyncr");
        expect(command("main-units").inputs.delete).toContain("systemctl disable --now");
        expect(command("backup-runner").inputs.delete).toContain("rm -f");
        expect(command("backup-maintenance-install").inputs.delete).toContain("disable --now");
    });

    it("exports the public key, mount point, devices and timers", async () => {
        expect(await promiseOf(program.backupPublicKey)).toBe(BACKUP_PUBLIC_KEY);
        expect(await promiseOf(program.mountPoint)).toBe("/plus/backup");
        expect(await promiseOf(program.volumeDevices)).toEqual(["/dev/sda1", "/dev/sdb1"]);
        expect(await promiseOf(program.backupJobs)).toEqual([
            { name: "main", timer: "backup_main.timer", schedule: "*-*-* 02:30:00", source: "192.0.2.10" },
            { name: "web", timer: "backup_web.timer", schedule: "daily", source: "192.0.2.11" },
        ]);
    });
});

describe("sshConnection", () => {
    it("keeps the private key a secret", async () => {
        const connection = sshConnection({ host: "h", port: 22, user: "root", privateKey: KEY, hostKey: MAIN_HOST_KEY });
        expect(await pulumi.isSecret(connection.privateKey as pulumi.Output<string>)).toBe(true);
    });
});
