// Loop devices for tests that need real block devices. Each test file detaches
// exactly the devices it created, never anything else.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export class LoopDevices {
    private readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-loop-"));
    private readonly devices: string[] = [];

    /** A sparse file of the given size attached with partition scanning. */
    create(sizeMiB: number): string {
        const file = path.join(this.dir, `disk${this.devices.length}.img`);
        fs.closeSync(fs.openSync(file, "w"));
        fs.truncateSync(file, sizeMiB * 1024 * 1024);
        const device = execFileSync("losetup", ["--find", "--show", "--partscan", file], { encoding: "utf8" }).trim();
        this.devices.push(device);
        return device;
    }

    /** Pulls one of our devices out, as a failed drive would go: Btrfs forgets it, then it is detached. */
    unplug(device: string): void {
        spawnSync("btrfs", ["device", "scan", "--forget", device]);
        execFileSync("losetup", ["--detach", device]);
        this.devices.splice(this.devices.indexOf(device), 1);
    }

    /** Unmounts whatever is mounted from our devices, then detaches them. */
    cleanup(): void {
        // One multi-device Btrfs shows its mount point on several devices.
        const mounts = new Set(
            this.devices.flatMap((device) => execFileSync("lsblk", ["-nro", "MOUNTPOINT", device], { encoding: "utf8" }).split("\n")),
        );
        for (const mountPoint of [...mounts].filter(Boolean)) {
            // A background balance (after `btrfs device add`) keeps the mount busy.
            spawnSync("btrfs", ["balance", "cancel", mountPoint]);
            execFileSync("umount", [mountPoint]);
        }
        for (const device of this.devices) {
            // Forget the kernel's record of a Btrfs member before the device goes away.
            spawnSync("btrfs", ["device", "scan", "--forget", device]);
            execFileSync("losetup", ["--detach", device]);
        }
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}
