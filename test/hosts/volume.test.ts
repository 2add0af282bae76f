// prepare-volume.sh on real Btrfs: loop devices on this machine, the exact
// script the BtrfsVolume component sends, and the safety rules around data.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareVolumeScript, VolumeLayout } from "../../components/btrfsVolume";
import { LoopDevices } from "./loopDevices";

const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: "utf8" }).trim();
const sha256 = (file: string) => sh("sha256sum", file).split(" ")[0];

/** Waits until no balance runs on the volume: prepare-volume.sh refuses to remove a drive during one. */
function waitForBalance(mountPoint: string): void {
    const deadline = Date.now() + 120_000;
    while (spawnSync("btrfs", ["balance", "status", mountPoint], { encoding: "utf8" }).stdout.includes("running")) {
        if (Date.now() > deadline) throw new Error(`balance on ${mountPoint} still running after 120 s`);
        spawnSync("sleep", ["0.5"]);
    }
}

describe("prepare-volume.sh", () => {
    const loops = new LoopDevices();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-volume-"));
    const fstab = path.join(work, "fstab");
    const mountPoint = path.join(work, "plus", "backup");
    const label = `pstest${process.pid}`;
    let drives: string[];
    let ext4Drive: string;
    let ext4Mount: string;

    function run(layout: Partial<VolumeLayout>) {
        const script = prepareVolumeScript({
            drives,
            wipeDrives: [],
            removeDrives: [],
            label,
            mountPoint,
            dataProfile: "single",
            metadataProfile: "raid1",
            ...layout,
        });
        return spawnSync("sh", ["-c", script], { encoding: "utf8", env: { ...process.env, FSTAB: fstab } });
    }

    beforeAll(() => {
        fs.writeFileSync(fstab, "# test fstab\n");
        drives = [loops.create(300), loops.create(300)];
        ext4Drive = loops.create(100);
        sh("mkfs.ext4", "-q", ext4Drive);
        ext4Mount = path.join(work, "ext4");
        fs.mkdirSync(ext4Mount);
        sh("mount", ext4Drive, ext4Mount);
        fs.writeFileSync(path.join(ext4Mount, "precious.txt"), "do not lose me\n");
        sh("umount", ext4Mount);
    });

    afterAll(() => {
        loops.cleanup();
        fs.rmSync(work, { recursive: true, force: true });
    });

    it("builds the seed's volume on blank drives and mounts it nosuid,nodev through fstab", () => {
        const result = run({});
        expect(result.stderr).toContain("creating Btrfs volume");
        expect(result.status).toBe(0);
        const out = JSON.parse(result.stdout.trim());
        expect(out.devices.sort()).toEqual(drives.map((d) => `${d}p1`).sort());
        expect(fs.readFileSync(fstab, "utf8")).toContain(`UUID=${out.uuid} ${mountPoint} btrfs nosuid,nodev,noexec,noatime 0 0`);
        expect(sh("findmnt", "-nro", "OPTIONS", "--mountpoint", mountPoint).split(",")).toEqual(
            expect.arrayContaining(["nosuid", "nodev", "noexec"]),
        );
        const df = sh("btrfs", "filesystem", "df", mountPoint);
        expect(df).toMatch(/Metadata, RAID1/);
        expect(df).toMatch(/Data, single/);
        expect(sh("btrfs", "inspect-internal", "dump-super", `${drives[0]}p1`)).toMatch(/nodesize\s+32768/);
        expect(sh("parted", "-sm", drives[0], "unit", "MiB", "print")).toMatch(/^1:1\.00MiB:/m);
    });

    it("adopts its own volume on a rerun and keeps the data", () => {
        fs.writeFileSync(path.join(mountPoint, "kept.txt"), "snapshot data\n");
        const uuid = sh("findmnt", "-nro", "UUID", "--mountpoint", mountPoint);
        const result = run({});
        expect(result.stderr).not.toContain("creating Btrfs volume");
        expect(result.status).toBe(0);
        expect(JSON.parse(result.stdout.trim()).uuid).toBe(uuid);
        expect(fs.readFileSync(path.join(mountPoint, "kept.txt"), "utf8")).toBe("snapshot data\n");
    });

    it("refuses a drive that holds a filesystem, names it, and changes nothing", () => {
        const result = run({ drives: [...drives, ext4Drive] });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toContain(`${ext4Drive}: holds data (TYPE=ext4`);
        expect(result.stderr).toContain("nothing was changed");
        expect(sh("blkid", "-p", "-s", "TYPE", "-o", "value", ext4Drive)).toBe("ext4");
        sh("mount", "-o", "ro", ext4Drive, ext4Mount);
        try {
            expect(fs.readFileSync(path.join(ext4Mount, "precious.txt"), "utf8")).toBe("do not lose me\n");
        } finally {
            sh("umount", ext4Mount);
        }
    });

    it("refuses a mounted drive even when it is listed for wiping", () => {
        sh("mount", "-o", "ro", ext4Drive, ext4Mount);
        try {
            const result = run({ drives: [...drives, ext4Drive], wipeDrives: [ext4Drive] });
            expect(result.status).not.toBe(0);
            expect(result.stderr).toContain(`${ext4Drive}: in use`);
        } finally {
            sh("umount", ext4Mount);
        }
        expect(sh("blkid", "-p", "-s", "TYPE", "-o", "value", ext4Drive)).toBe("ext4");
    });

    it("names every bad drive at once", () => {
        const result = run({ drives: [...drives, ext4Drive, "/dev/pullsnap-missing"] });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toContain("/dev/pullsnap-missing: not a block device");
        expect(result.stderr).toContain(`${ext4Drive}: holds data`);
        expect(result.stderr).toContain("2 drive problem(s)");
    });

    it("wipes a listed drive and adds it to the volume, keeping earlier data", () => {
        const result = run({ drives: [...drives, ext4Drive], wipeDrives: [ext4Drive] });
        expect(result.stderr).toContain(`wiping ${ext4Drive}`);
        expect(result.status).toBe(0);
        expect(JSON.parse(result.stdout.trim()).devices).toContain(`${ext4Drive}p1`);
        expect(sh("btrfs", "filesystem", "show", mountPoint)).toContain(`${ext4Drive}p1`);
        expect(fs.readFileSync(path.join(mountPoint, "kept.txt"), "utf8")).toBe("snapshot data\n");
    });

    describe("removing a drive", () => {
        const big = () => path.join(mountPoint, "big.bin");
        let bigHash: string;

        beforeAll(() => {
            sh("dd", "if=/dev/urandom", `of=${big()}`, "bs=1M", "count=120", "status=none");
            sh("sync");
            bigHash = sha256(big());
            waitForBalance(mountPoint);
        });

        it("refuses a drive dropped from the config unless removeDrives lists it", () => {
            const result = run({ drives });
            expect(result.status).not.toBe(0);
            expect(result.stderr).toContain(`${ext4Drive}p1 (drive ${ext4Drive}) is part of the volume but not in backupServer.drives`);
            expect(result.stderr).toContain("nothing was removed");
            expect(sh("btrfs", "filesystem", "show", mountPoint)).toContain(`${ext4Drive}p1`);
        });

        it("refuses with the numbers when the remaining drives lack the room", () => {
            const result = run({ drives: [ext4Drive], removeDrives: drives });
            expect(result.status).not.toBe(0);
            expect(result.stderr).toMatch(/GiB is allocated there, but the other drives have only [0-9.]+ GiB unallocated/);
            expect(sh("btrfs", "filesystem", "show", mountPoint)).toContain(`${drives[0]}p1`);
            expect(sha256(big())).toBe(bigHash);
        });

        it("moves the data off a drive listed in removeDrives, then drops it from the volume", () => {
            const result = run({ drives, removeDrives: [ext4Drive] });
            expect(result.stderr).toContain(`removing ${ext4Drive}p1`);
            expect(result.status).toBe(0);
            expect(JSON.parse(result.stdout.trim()).devices.sort()).toEqual(drives.map((d) => `${d}p1`).sort());
            expect(sh("btrfs", "filesystem", "show", mountPoint)).not.toContain(`${ext4Drive}p1`);
            expect(sha256(big())).toBe(bigHash);
            expect(fs.readFileSync(path.join(mountPoint, "kept.txt"), "utf8")).toBe("snapshot data\n");
            // Idempotent: the next run finds nothing to remove.
            expect(run({ drives, removeDrives: [ext4Drive] }).status).toBe(0);
        });
    });

    describe("a failed drive", () => {
        const failed = new LoopDevices();
        const failedMount = path.join(work, "failed", "backup");
        let survivor: string;
        let dead: string;
        let replacement: string;

        const runFailed = (drives: string[]) =>
            spawnSync(
                "sh",
                [
                    "-c",
                    prepareVolumeScript({
                        drives,
                        wipeDrives: [],
                        removeDrives: [],
                        label: `${label}f`,
                        mountPoint: failedMount,
                        dataProfile: "single",
                        metadataProfile: "raid1",
                    }),
                ],
                { encoding: "utf8", env: { ...process.env, FSTAB: fstab } },
            );

        beforeAll(() => {
            [survivor, dead, replacement] = [failed.create(300), failed.create(300), failed.create(300)];
            expect(runFailed([survivor, dead]).status).toBe(0);
            fs.writeFileSync(path.join(failedMount, "lost.txt"), "on a volume that loses a drive\n");
            sh("umount", failedMount);
            failed.unplug(dead);
        });

        afterAll(() => failed.cleanup());

        it("stops with the runbook's pointer and never reformats the surviving drive", () => {
            const result = runFailed([survivor, replacement]);
            expect(result.status).not.toBe(0);
            expect(result.stderr).toContain("a drive is missing (failed or unplugged)");
            expect(result.stderr).toContain('See README, "Replace a failed drive"');
            expect(sh("blkid", "-p", "-s", "TYPE", "-o", "value", `${survivor}p1`)).toBe("btrfs");
            expect(spawnSync("findmnt", ["--mountpoint", failedMount]).status).toBe(1);
        });
    });
});
