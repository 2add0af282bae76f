// The resource graph of index.ts under Pulumi mocks: which remote steps exist,
// how outputs of one feed the next, and what each step would run. Whether the
// steps work is proven on the lab VMs (test/e2e), not here.
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { sshConnection } from "../../components/hostConnection";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const BACKUP_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBackupServerKey";
const MAIN_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMainHostKey";

interface Recorded {
    type: string;
    name: string;
    inputs: Record<string, unknown>;
}
const resources: Recorded[] = [];

// What each remote step prints on stdout, keyed by resource name.
const stdoutByName: Record<string, string> = {
    "backup-runner": JSON.stringify({ publicKey: BACKUP_PUBLIC_KEY }),
    "backup-volume-prepare": JSON.stringify({ uuid: "1234-uuid", devices: ["/dev/sda1", "/dev/sdb1"] }),
    "main-source-rsyncr": JSON.stringify({ hostKey: MAIN_HOST_KEY }),
    "main-units": JSON.stringify({ timer: "backup_main.timer", service: "backup_main.service" }),
};

function find(type: string, name: string): Recorded {
    const found = resources.find((r) => r.type === type && r.name === name);
    if (!found) {
        throw new Error(`no ${type} named ${name}; have: ${resources.map((r) => `${r.type} ${r.name}`).join(", ")}`);
    }
    return found;
}
const command = (name: string) => find("command:remote:Command", name);
/** The script a remote step runs, unwrapped from renderScript's `bash -c '...'`. */
const scriptOf = (name: string, phase: "create" | "delete" = "create") =>
    (command(name).inputs[phase] as string)
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
                connection: { host: "backup.example.org", privateKey: KEY },
                drives: ["/dev/sda", "/dev/sdb"],
            }),
            "pullsnap:jobs": JSON.stringify([
                {
                    name: "main",
                    connection: { host: "main.example.org", privateKey: KEY },
                    pullAddress: { host: "192.0.2.10", port: 2222 },
                    from: "192.0.2.20",
                    paths: ["/srv", "/etc"],
                    schedule: "*-*-* 02:30:00",
                },
            ]),
        },
        ["pullsnap:backupServer", "pullsnap:jobs"],
    );
    program = await import("../../index");
    // Registrations are asynchronous; resolving every export waits for all of them.
    await Promise.all(Object.values(program).map((value) => promiseOf(value)));
});

describe("the program", () => {
    it("declares one component per concept and one remote step per host task", () => {
        expect(resources.map((r) => `${r.type} ${r.name}`).sort()).toEqual(
            [
                "pullsnap:index:BackupServer backup",
                "pullsnap:index:BtrfsVolume backup-volume",
                "pullsnap:index:SourceHost main-source",
                "pullsnap:index:BackupJob main",
                "command:remote:Command backup-runner",
                "command:remote:Command backup-volume-prepare",
                "command:remote:Command main-source-rsyncr",
                "command:remote:Command main-units",
            ].sort(),
        );
    });

    it("authorizes the backup server's generated key on the source, restricted", () => {
        const create = scriptOf("main-source-rsyncr");
        expect(create).toContain(`BACKUP_PUBLIC_KEY='${BACKUP_PUBLIC_KEY}'`);
        expect(create).toContain("FROM='192.0.2.20'");
        expect(create).toContain('options="restrict"');
        expect(create).toContain("cap_dac_read_search=ep");
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

    it("builds the seed's volume and never destroys it", () => {
        const create = scriptOf("backup-volume-prepare");
        expect(create).toContain("DRIVES=('/dev/sda' '/dev/sdb')");
        expect(create).toContain("METADATA_PROFILE='raid1'");
        expect(create).toContain("--nodesize 32k");
        // Destroying the volume only prints why nothing is removed.
        expect(command("backup-volume-prepare").inputs.delete).toMatch(/^echo "[^"$`;|&]*" >&2$/);
    });

    it("removes what it installed on destroy", () => {
        expect(command("main-source-rsyncr").inputs.delete).toContain("userdel rsyncr");
        expect(command("main-units").inputs.delete).toContain("systemctl disable --now");
        expect(command("backup-runner").inputs.delete).toContain("rm -f");
    });

    it("exports the public key, mount point, devices and timers", async () => {
        expect(await promiseOf(program.backupPublicKey)).toBe(BACKUP_PUBLIC_KEY);
        expect(await promiseOf(program.mountPoint)).toBe("/plus/backup");
        expect(await promiseOf(program.volumeDevices)).toEqual(["/dev/sda1", "/dev/sdb1"]);
        expect(await promiseOf(program.backupJobs)).toEqual([
            { name: "main", timer: "backup_main.timer", schedule: "*-*-* 02:30:00", source: "192.0.2.10" },
        ]);
    });
});

describe("sshConnection", () => {
    it("keeps the private key a secret", async () => {
        const connection = sshConnection({ host: "h", port: 22, user: "root", privateKey: KEY });
        expect(await pulumi.isSecret(connection.privateKey as pulumi.Output<string>)).toBe(true);
    });
});
