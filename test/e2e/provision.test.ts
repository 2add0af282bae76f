// The whole product on real hosts: fresh lab VMs, `pulumi up` over SSH, then
// every promise checked on the hosts themselves and attacked where it is a
// security promise. The tests in this file run in order on one lab.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Lab, Stack } from "./harness";
import * as fs from "fs";

// Its own ports and state, apart from the demo's lab (2221/2222).
const lab = new Lab(2241);
const stack = new Stack("e2e");
const PULL =
    "ssh -i /etc/pullsnap/id_ed25519 -o BatchMode=yes -o UserKnownHostsFile=/etc/pullsnap/known_hosts.d/main -o StrictHostKeyChecking=yes";

/** ssh and rsync -e arguments that reach rsyncr on main as the backup job does. */
function pullVia(): { ssh: string; host: string } {
    const main = lab.config().main as { pullHost: string; pullPort: number };
    return { ssh: `${PULL} -p ${main.pullPort}`, host: `rsyncr@${main.pullHost}` };
}

function up() {
    const r = stack.pulumi("up", "--yes", "--skip-preview");
    if (r.status !== 0) {
        throw new Error(`pulumi up failed:\n${r.stdout}\n${r.stderr}`);
    }
    return r;
}

describe("pullsnap on the lab", () => {
    beforeAll(() => {
        lab.up();
        stack.init();
        stack.configureForLab(lab);
    });

    afterAll(() => {
        lab.down();
        stack.remove();
    });

    it("provisions both hosts with pulumi up, then previews 0 changes", () => {
        const started = Date.now();
        up();
        console.log(`fresh pulumi up: ${((Date.now() - started) / 1000).toFixed(1)} s`);
        const previewStarted = Date.now();
        const preview = stack.pulumi("preview", "--expect-no-changes", "--diff");
        console.log(`converged pulumi preview: ${((Date.now() - previewStarted) / 1000).toFixed(1)} s`);
        expect(preview.stderr).toBe("");
        expect(preview.status).toBe(0);
        const second = stack.pulumi("up", "--yes", "--expect-no-changes");
        expect(second.status).toBe(0);
    });

    it("keeps the provisioning key out of the state in plain text", () => {
        const key = fs.readFileSync(lab.config().privateKeyFile, "utf8");
        const body = key.split("\n").find((line) => line.length > 40);
        expect(body).toBeTruthy();
        const state = stack.stateText();
        expect(state.length).toBeGreaterThan(1000);
        expect(state).not.toContain(body as string);
        expect(state).not.toContain("BEGIN OPENSSH PRIVATE KEY");
    });

    it("gives rsyncr a capability copy of rsync that only rsyncr can run", () => {
        const out = lab.ok(
            "main",
            `set -e
            getcap /var/lib/rsync-readcap/rsync
            stat -c '%U:%G %a' /var/lib/rsync-readcap/rsync /var/lib/rsync-readcap
            getent passwd rsyncr | cut -d: -f6,7
            passwd -S rsyncr | cut -d' ' -f2
            useradd -M nobody2 2>/dev/null || true
            if runuser -u nobody2 -- /var/lib/rsync-readcap/rsync --version >/dev/null 2>&1; then echo OTHER-CAN-RUN; else echo other-refused; fi
            scratch=$(mktemp -d) && chown rsyncr "$scratch"
            runuser -u rsyncr -- /var/lib/rsync-readcap/rsync /root/secret/root-only.txt "$scratch/copy" && md5sum < "$scratch/copy" | cut -c1-32
            md5sum < /root/secret/root-only.txt | cut -c1-32
            if runuser -u rsyncr -- chmod 0755 /var/lib/rsync-readcap/rsync 2>/dev/null; then echo RSYNCR-CAN-CHMOD; else echo chmod-refused; fi
            if runuser -u rsyncr -- /var/lib/rsync-readcap/rsync /etc/hostname /root/written-by-rsyncr 2>/dev/null; then echo RSYNCR-CAN-WRITE; else echo write-refused; fi
            # A compromised rsyncr must not widen its own SSH access.
            keys=/var/lib/rsync-readcap/.ssh
            if runuser -u rsyncr -- sh -c "echo ssh-ed25519 AAAA attacker >> $keys/authorized_keys" 2>/dev/null; then echo KEYS-WRITABLE; else echo keys-refused; fi
            if runuser -u rsyncr -- sh -c "echo ssh-ed25519 AAAA attacker > $keys/authorized_keys2" 2>/dev/null; then echo KEYS2-CREATED; else echo keys2-refused; fi
            if runuser -u rsyncr -- mv $keys/authorized_keys $keys/old 2>/dev/null; then echo KEYS-MOVED; else echo move-refused; fi`,
        );
        const lines = out.trim().split("\n");
        expect(lines[0]).toMatch(/^\/var\/lib\/rsync-readcap\/rsync cap_dac_read_search=ep$/);
        expect(lines.slice(1, 3)).toEqual(["root:rsyncr 750", "root:root 755"]);
        expect(lines[3]).toBe("/var/lib/rsync-readcap:/bin/sh");
        expect(lines[4]).toBe("L");
        expect(lines[5]).toBe("other-refused");
        expect(lines[6]).toBe(lines[7]);
        expect(lines.slice(8)).toEqual(["chmod-refused", "write-refused", "keys-refused", "keys2-refused", "move-refused"]);
    });

    it("lets rsyncr's authorized key do nothing but a read-only rsync", () => {
        const out = lab.ok(
            "backup",
            `cd /tmp
            ssh="${pullVia().ssh}" host=${pullVia().host}
            # Only job paths (here /root), so the root-only file comes through a filter.
            rsync -a -f '+ /root/' -f '+ /root/secret/' -f '+ /root/secret/root-only.txt' -f '- *' -e "$ssh" "$host:/root" /tmp/pulled/ && echo pull-ok
            md5sum < /tmp/pulled/root/secret/root-only.txt | cut -c1-32
            # ssh must not eat the rest of this script from stdin.
            $ssh "$host" id </dev/null 2>&1 | tail -1
            echo pwned > /tmp/push.txt
            if rsync -a -e "$ssh" /tmp/push.txt "$host:/tmp/push.txt" 2>/dev/null; then echo PUSH-WORKED; else echo push-refused; fi
            if rsync -a --remove-source-files -f '+ /data/' -f '+ /data/docs/' -f '+ /data/docs/file-04.txt' -f '- *' -e "$ssh" "$host:/srv/data" /tmp/ 2>/dev/null; then echo REMOVE-WORKED; else echo remove-refused; fi
            # A working tunnel would answer with main's SSH banner.
            $ssh -N -L 127.0.0.1:7070:127.0.0.1:22 "$host" </dev/null 2>/dev/null & tunnel=$!
            sleep 3
            if timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/7070 && head -c 7 <&3' 2>/dev/null | grep -q SSH-; then echo FORWARD-WORKED; else echo forward-refused; fi
            kill $tunnel 2>/dev/null
            if $ssh -tt "$host" 2>/dev/null </dev/null; then echo SHELL-WORKED; else echo shell-refused; fi`,
        );
        const lines = out.trim().split("\n");
        expect(lines[0]).toBe("pull-ok");
        const rootOnly = lab.ok("main", "md5sum < /root/secret/root-only.txt | cut -c1-32").trim();
        expect(lines[1]).toBe(rootOnly);
        expect(lines[2]).toContain("refused");
        expect(lines.slice(3)).toEqual(["push-refused", "remove-refused", "forward-refused", "shell-refused"]);
        expect(lab.ok("main", "test ! -e /tmp/push.txt && test -e /srv/data/docs/file-04.txt && echo intact").trim()).toBe("intact");
        expect(lab.ok("main", "journalctl -t rsync-readcap --no-pager -o cat | tail -5")).toContain("refused");
    });

    it("builds the seed's Btrfs volume, mounted nosuid,nodev, with the job timer", () => {
        const out = lab.ok(
            "backup",
            `btrfs filesystem show /plus/backup
            btrfs filesystem df /plus/backup
            findmnt -nro OPTIONS /plus/backup
            grep ' /plus/backup ' /etc/fstab
            systemctl show -p ProtectSystem -p ProtectHome -p PrivateTmp -p NoNewPrivileges -p ReadWritePaths backup_main.service
            systemctl list-timers --all --no-pager backup_main.timer
            systemctl is-enabled backup_main.timer`,
        );
        expect(out).toMatch(/Label: 'backup'/);
        expect(out).toContain("/dev/vdb1");
        expect(out).toContain("/dev/vdc1");
        expect(out).toMatch(/Metadata, RAID1/);
        expect(out).toMatch(/Data, single/);
        expect(out).toMatch(/(^|,)nosuid(,|$)/m);
        expect(out).toMatch(/(^|,)nodev(,|$)/m);
        expect(out).toMatch(/^UUID=\S+ \/plus\/backup btrfs nosuid,nodev,noexec,noatime 0 0$/m);
        // The runner's sandbox, as systemd applies it.
        expect(out).toMatch(/^ProtectSystem=strict$/m);
        expect(out).toMatch(/^ProtectHome=yes$/m);
        expect(out).toMatch(/^PrivateTmp=yes$/m);
        expect(out).toMatch(/^NoNewPrivileges=yes$/m);
        expect(out).toMatch(/^ReadWritePaths=\/plus\/backup\/main\s*$/m);
        expect(out).toContain("backup_main.timer");
        expect(out.trim().endsWith("enabled")).toBe(true);
    });

    it("pulls a read-only snapshot with owners, modes and the root-only file; a second run keeps the first", () => {
        lab.ok("backup", "systemctl start backup_main.service");
        const first = lab.ok("backup", "ls /plus/backup/main/snapshots | grep -v partial | tail -1").trim();
        expect(first).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        const snap = `/plus/backup/main/snapshots/${first}`;
        const out = lab.ok(
            "backup",
            `btrfs property get -ts ${snap} ro
            stat -c '%U:%G %a' ${snap}/root/secret ${snap}/root/secret/root-only.txt
            md5sum < ${snap}/srv/data/big.bin | cut -c1-32`,
        );
        const source = lab.ok(
            "main",
            `stat -c '%U:%G %a' /root/secret /root/secret/root-only.txt
            md5sum < /srv/data/big.bin | cut -c1-32
            echo changed > /srv/data/docs/file-03.txt`,
        );
        expect(out.split("\n")[0]).toBe("ro=true");
        expect(out.split("\n").slice(1, 4)).toEqual(source.trim().split("\n"));

        lab.ok("backup", "sleep 1; systemctl start backup_main.service");
        const snaps = lab.ok("backup", "ls /plus/backup/main/snapshots | grep -v partial").trim().split("\n");
        expect(snaps.length).toBe(2);
        const contents = lab.ok("backup", snaps.map((s) => `cat /plus/backup/main/snapshots/${s}/srv/data/docs/file-03.txt`).join("\n"));
        const [old, fresh] = contents.trim().split("\n");
        expect(old).not.toBe("changed");
        expect(fresh).toBe("changed");
    });

    it("keeps the capability copy working after apt-get install --reinstall rsync", () => {
        const out = lab.ok(
            "main",
            `DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall --no-download rsync >/dev/null 2>&1 || apt-get install -y --reinstall rsync >/dev/null
            getcap /var/lib/rsync-readcap/rsync
            stat -c '%U:%G %a' /var/lib/rsync-readcap/rsync
            scratch=$(mktemp -d) && chown rsyncr "$scratch"
            runuser -u rsyncr -- /var/lib/rsync-readcap/rsync /root/secret/root-only.txt "$scratch/" && echo read-ok
            journalctl -t rsync-readcap --no-pager -o cat | grep -c refreshed`,
        );
        expect(out).toContain("cap_dac_read_search=ep");
        expect(out).toContain("root:rsyncr 750");
        expect(out).toContain("read-ok");
    });

    it("refuses to add a drive that holds an ext4 filesystem, and the file survives", () => {
        lab.ok("backup", "mkfs.ext4 -q -F /dev/vdd && mount /dev/vdd /mnt && echo precious > /mnt/file.txt && umount /mnt");
        const set = stack.pulumi("config", "set", "--path", "pullsnap:backupServer.drives[2]", "/dev/vdd");
        expect(set.status).toBe(0);
        const r = stack.pulumi("up", "--yes", "--skip-preview");
        expect(r.status).not.toBe(0);
        expect(r.stdout + r.stderr).toContain("/dev/vdd: holds data (TYPE=ext4");
        expect(lab.ok("backup", "mount -o ro /dev/vdd /mnt && cat /mnt/file.txt; umount /mnt").trim()).toBe("precious");
        expect(stack.pulumi("config", "rm", "--path", "pullsnap:backupServer.drives[2]").status).toBe(0);
    });

    it("destroy removes rsyncr, the capability copy and the timers, and keeps every snapshot", () => {
        const before = lab.ok("backup", "ls /plus/backup/main/snapshots").trim();
        const r = stack.pulumi("destroy", "--yes", "--skip-preview");
        expect(r.status).toBe(0);
        const backup = lab.ok(
            "backup",
            `ls /plus/backup/main/snapshots
            systemctl list-unit-files --no-pager 'backup_*' | grep -c backup_ || true
            test -e /usr/local/sbin/pullsnap && echo RUNNER-LEFT || echo runner-gone
            findmnt -nro SOURCE /plus/backup >/dev/null && echo still-mounted`,
        );
        expect(backup).toContain(before);
        expect(backup).toContain("runner-gone");
        expect(backup).toContain("still-mounted");
        expect(backup.split("\n")).toContain("0");
        const main = lab.ok(
            "main",
            `getent passwd rsyncr || echo user-gone
            test -e /var/lib/rsync-readcap && echo COPY-LEFT || echo copy-gone
            test -e /etc/apt/apt.conf.d/80rsync-readcap && echo HOOK-LEFT || echo hook-gone`,
        );
        expect(main.trim().split("\n")).toEqual(["user-gone", "copy-gone", "hook-gone"]);
    });
});
