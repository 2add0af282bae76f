// The seed's maintenance on real hosts: adding and removing a drive through the
// config, the scrub and watch timers, smartd, and alerts reaching a local HTTP
// listener in Slack's format. The tests in this file run in order on one lab.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AlertListener } from "./alertListener";
import { Lab, Stack } from "./harness";

// Its own ports, apart from the demo's lab and the other suites'.
const lab = new Lab(2301);
const stack = new Stack("maintenance");
const listener = new AlertListener(2309);
// The part of the webhook URL that is the secret, as in a real Slack URL.
const WEBHOOK_TOKEN = "T0LAB/B0LAB/lab-webhook-secret-7f3a";

function up() {
    const r = stack.pulumi("up", "--yes", "--skip-preview");
    if (r.status !== 0) {
        throw new Error(`pulumi up failed:\n${r.stdout}\n${r.stderr}`);
    }
    return r;
}

function set(key: string, value: string, ...flags: string[]) {
    const r = stack.pulumi("config", "set", "--path", ...flags, key, value);
    if (r.status !== 0) throw new Error(`config set ${key}: ${r.stderr}`);
}

/** Every file of a snapshot with its checksum: what "data intact" means. */
function snapshotManifest(snapshot: string): string {
    return lab.ok("backup", `set -e; cd "/plus/backup/main/snapshots/${snapshot}"; find . -type f -print0 | sort -z | xargs -0 sha256sum`);
}

const waitForBalance = "while btrfs balance status /plus/backup | grep -q running; do sleep 1; done";

describe("maintenance on the lab", () => {
    let snapshot: string;
    let manifest: string;

    beforeAll(() => {
        listener.start();
        lab.up();
        stack.init();
        stack.configureForLab(lab);
        // The VMs reach this machine's loopback through QEMU's gateway 10.0.2.2.
        set("pullsnap:alerts.format", "slack");
        set("pullsnap:alerts.url", `http://10.0.2.2:${listener.port}/services/${WEBHOOK_TOKEN}`, "--secret");
        set("pullsnap:backupServer.metricsDir", "/var/lib/pullsnap-metrics");
    });

    afterAll(() => {
        lab.down();
        stack.remove();
        listener.stop();
    });

    it("installs the scrub and watch timers and smartd, and previews 0 changes after", () => {
        up();
        const out = lab.ok(
            "backup",
            `systemctl is-enabled pullsnap-scrub.timer pullsnap-watch.timer
            systemctl is-active pullsnap-scrub.timer pullsnap-watch.timer
            systemctl show -P TimersCalendar pullsnap-scrub.timer
            stat -c '%U:%G %a' /etc/pullsnap/pullsnap.conf
            grep -c 'smartd-alert' /etc/smartd.conf`,
        );
        expect(out.trim().split("\n").slice(0, 4)).toEqual(["enabled", "enabled", "active", "active"]);
        expect(out).toMatch(/OnCalendar=\*-\*-01 00:00:00/);
        expect(out).toContain("root:root 600");
        const preview = stack.pulumi("preview", "--expect-no-changes");
        expect(preview.status).toBe(0);
    });

    it("keeps the webhook URL out of the state in plain text", () => {
        const state = stack.stateText();
        expect(state.length).toBeGreaterThan(1000);
        expect(state).not.toContain("lab-webhook-secret-7f3a");
    });

    it("keeps the webhook URL out of a failed step's error, which quotes the whole command", () => {
        // The server config cannot be replaced: the maintenance step fails when it re-runs.
        lab.ok("backup", "chattr +i /etc/pullsnap/pullsnap.conf");
        set("pullsnap:backupServer.scrubSchedule", "weekly");
        const failed = stack.pulumi("up", "--yes", "--skip-preview");
        lab.ok("backup", "chattr -i /etc/pullsnap/pullsnap.conf");
        const output = failed.stdout + failed.stderr;
        expect(failed.status).not.toBe(0);
        expect(output).toContain("backup-maintenance-install");
        expect(output).toMatch(/running "bash -c /);
        expect(output).not.toContain("lab-webhook-secret-7f3a");
        expect(stack.pulumi("config", "rm", "--path", "pullsnap:backupServer.scrubSchedule").status).toBe(0);
        up();
    });

    it("alerts the webhook when a backup fails, saying why", () => {
        // A source whose host key changed is what a swapped or spoofed source looks like.
        const r = lab.sh(
            "backup",
            `ssh-keygen -q -t ed25519 -N '' -f /tmp/other-key
            echo "$(cut -d' ' -f1 /etc/pullsnap/known_hosts.d/main) $(cut -d' ' -f1,2 /tmp/other-key.pub)" > /tmp/wrong-known-hosts
            mount --bind /tmp/wrong-known-hosts /etc/pullsnap/known_hosts.d/main
            systemctl start backup_main.service; echo "exit=$?"
            umount /etc/pullsnap/known_hosts.d/main`,
        );
        expect(r.stdout).toMatch(/exit=[1-9]/);
        const alert = listener.waitFor(/backup job main failed/);
        expect(alert.method).toBe("POST");
        expect(alert.url).toBe(`/services/${WEBHOOK_TOKEN}`);
        expect(alert.headers["content-type"]).toContain("application/json");
        const text = (JSON.parse(alert.body) as { text: string }).text;
        expect(text).toMatch(/^pullsnap@backup: backup job main failed: .*Host key verification failed/);
    });

    it("alerts when a job cannot even start", () => {
        const r = lab.sh(
            "backup",
            `mount --bind /dev/null /etc/pullsnap/known_hosts.d/main
            systemctl start backup_main.service; echo "exit=$?"
            umount /etc/pullsnap/known_hosts.d/main`,
        );
        expect(r.stdout).toMatch(/exit=[1-9]/);
        const text = (JSON.parse(listener.waitFor(/could not start/).body) as { text: string }).text;
        expect(text).toContain("backup job main could not start: ");
        expect(text).toContain("known_hosts=/etc/pullsnap/known_hosts.d/main: no such readable file");
    });

    it("alerts once when a backup is stale", () => {
        lab.ok("backup", "systemctl start backup_main.service");
        const before = listener.received().length;
        // Three days on, the 36 h max_age has passed.
        lab.sh("backup", `PULLSNAP_NOW=$(( $(date +%s) + 3 * 86400 )) pullsnap watch`);
        listener.waitFor(/backup job main is stale/);
        lab.sh("backup", `PULLSNAP_NOW=$(( $(date +%s) + 3 * 86400 + 3600 )) pullsnap watch`);
        expect(listener.received().filter((r) => /is stale/.test(r.body))).toHaveLength(1);
        expect(listener.received().length).toBe(before + 1);
    });

    it("adds a drive: preview shows it, up adds it, and the data stays byte-identical", () => {
        snapshot = lab.ok("backup", "ls /plus/backup/main/snapshots | tail -n1").trim();
        manifest = snapshotManifest(snapshot);
        expect(manifest.split("\n").length).toBeGreaterThan(10);
        set("pullsnap:backupServer.drives[2]", "/dev/sda");
        const preview = stack.pulumi("preview", "--diff");
        expect(preview.status).toBe(0);
        expect(preview.stdout).toMatch(/~ command:remote:Command: \(update\)[^]*backup-volume-prepare/);
        // The script's drive list, shell-quoted inside the step's `bash -c '...'`.
        expect(preview.stdout).toMatch(/^ +- DRIVES=\(\S+\/dev\/vdb\S+ \S+\/dev\/vdc\S+\)$/m);
        expect(preview.stdout).toMatch(/^ +\+ DRIVES=\(\S+\/dev\/vdb\S+ \S+\/dev\/vdc\S+ \S+\/dev\/sda\S+\)$/m);
        const started = Date.now();
        const r = up();
        console.log(`pulumi up adding a drive: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        expect(r.stdout + r.stderr).toMatch(/adding \/dev\/sda1 to \/plus\/backup/);
        expect(lab.ok("backup", "btrfs filesystem show /plus/backup")).toContain("/dev/sda1");
        expect(snapshotManifest(snapshot)).toBe(manifest);
        expect(stack.pulumi("preview", "--expect-no-changes").status).toBe(0);
        // A drive with SMART in the volume: smartd now watches it, even in this VM.
        const smartd = lab.sh("backup", "systemctl is-active smartmontools || journalctl -u smartmontools -o cat --no-pager | tail -n 20");
        expect(smartd.stdout.split("\n")[0], `${smartd.stdout}\n--- pulumi up\n${r.stdout}`).toBe("active");
    });

    it("delivers smartd's test message for the SATA drive through the same channel", () => {
        lab.ok(
            "backup",
            "sed '/^DEVICESCAN/s/$/ -M test/' /etc/smartd.conf > /tmp/smartd-test.conf && smartd -q onecheck -c /tmp/smartd-test.conf >&2",
        );
        const alert = listener.waitFor(/EmailTest/);
        expect((JSON.parse(alert.body) as { text: string }).text).toContain("/dev/sda");
        expect(lab.ok("backup", "pullsnap status || true")).toMatch(/\/dev\/sda.*EmailTest/);
    });

    it("scrubs from the timer's service and shows the result, the devices and SMART in status", () => {
        lab.ok("backup", "systemctl start pullsnap-scrub.service");
        const status = lab.ok("backup", "pullsnap status");
        expect(status).toMatch(/^main\s.*\sok\s/m);
        expect(status).toContain("/dev/vdb1");
        expect(status).toContain("/dev/vdc1");
        expect(status).toMatch(/SCRUB[^]*clean/);
        expect(status).toMatch(/SMART[^]*PASSED/);
        const metrics = lab.ok("backup", "cat /var/lib/pullsnap-metrics/pullsnap_volume.prom /var/lib/pullsnap-metrics/pullsnap_main.prom");
        expect(metrics).toMatch(/^pullsnap_scrub_errors(\{[^}]*\})? 0$/m);
        expect(metrics).toMatch(/^pullsnap_snapshots\{job="main"\} [1-9]/m);
    });

    it("refuses to drop a drive from the config without removeDrives, naming it", () => {
        lab.ok("backup", waitForBalance);
        expect(stack.pulumi("config", "rm", "--path", "pullsnap:backupServer.drives[2]").status).toBe(0);
        const r = stack.pulumi("up", "--yes", "--skip-preview");
        expect(r.status).not.toBe(0);
        expect(r.stdout + r.stderr).toContain("/dev/sda1 (drive /dev/sda) is part of the volume but not in backupServer.drives");
        expect(lab.ok("backup", "btrfs filesystem show /plus/backup")).toContain("/dev/sda1");
    });

    it("removes the drive listed in removeDrives, moving its data, and the data stays byte-identical", () => {
        set("pullsnap:backupServer.removeDrives[0]", "/dev/sda");
        const started = Date.now();
        const r = up();
        console.log(`pulumi up removing a drive: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        expect(r.stdout + r.stderr).toMatch(/removing \/dev\/sda1 from \/plus\/backup: moving [0-9.]+ GiB/);
        expect(lab.ok("backup", "btrfs filesystem show /plus/backup")).not.toContain("/dev/sda1");
        expect(snapshotManifest(snapshot)).toBe(manifest);
        expect(stack.pulumi("preview", "--expect-no-changes").status).toBe(0);
    });

    it("repairs a disabled scrub timer, named in a plain preview", () => {
        lab.ok("backup", "systemctl disable --now pullsnap-scrub.timer");
        const preview = stack.pulumi("preview", "--expect-no-changes");
        expect(preview.status).not.toBe(0);
        expect(preview.stdout).toContain("scrub_timer");
        up();
        expect(lab.ok("backup", "systemctl is-enabled pullsnap-scrub.timer; systemctl is-active pullsnap-scrub.timer")).toBe(
            "enabled\nactive\n",
        );
        expect(stack.pulumi("preview", "--expect-no-changes").status).toBe(0);
    });
});
