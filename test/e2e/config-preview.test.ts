// A bad stack config fails `pulumi preview` with every problem listed, before
// any SSH connection: the hosts point at a local listener that counts
// connection attempts, and it must see none.
import * as net from "net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Stack } from "./harness";

describe("pulumi preview with a bad config", () => {
    const stack = new Stack("badconfig");
    let connections = 0;
    const listener = net.createServer((socket) => {
        connections++;
        socket.destroy();
    });
    let port = 0;

    beforeAll(async () => {
        await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
        port = (listener.address() as net.AddressInfo).port;
        stack.init();
    });

    afterAll(async () => {
        await new Promise<void>((resolve) => listener.close(() => resolve()));
        stack.remove();
    });

    it("exits non-zero, names every problem and connects nowhere", () => {
        const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----";
        const set = stack.pulumi(
            "config",
            "set-all",
            "--path",
            "--plaintext",
            "pullsnap:backupServer.connection.host=127.0.0.1",
            "--plaintext",
            `pullsnap:backupServer.connection.port=${port}`,
            "--plaintext",
            "pullsnap:backupServer.drives[0]=sda",
            "--plaintext",
            "pullsnap:backupServer.drivez[0]=/dev/sdc",
            "--secret",
            `pullsnap:backupServer.connection.privateKey=${key}`,
            "--plaintext",
            "pullsnap:jobs[0].name=main",
            "--plaintext",
            "pullsnap:jobs[0].connection.host=127.0.0.1",
            "--plaintext",
            `pullsnap:jobs[0].connection.port=${port}`,
            "--secret",
            `pullsnap:jobs[0].connection.privateKey=${key}`,
            "--plaintext",
            "pullsnap:jobs[0].pullAddress.host=10.0.2.2",
            "--plaintext",
            "pullsnap:jobs[0].schedule=sometimes",
            "--plaintext",
            "pullsnap:jobs[0].retention=forever",
            "--plaintext",
            "pullsnap:jobs[1].name=main",
            "--plaintext",
            "pullsnap:jobs[1].connection.host=127.0.0.1",
            "--secret",
            `pullsnap:jobs[1].connection.privateKey=${key}`,
            "--plaintext",
            "pullsnap:jobs[1].pullAddress.host=10.0.2.2",
        );
        expect(set.stderr).toBe("");
        expect(set.status).toBe(0);

        const preview = stack.pulumi("preview");
        const output = preview.stdout + preview.stderr;
        expect(preview.status).not.toBe(0);
        for (const problem of [
            'pullsnap:backupServer.drives[0]: got "sda"; must be a block device path under /dev/',
            'pullsnap:backupServer: unknown key "drivez"; allowed: connection, drives, wipeDrives, removeDrives, volume, scrubSchedule, metricsDir',
            'pullsnap:jobs[0].schedule: got "sometimes"; must be a systemd OnCalendar expression',
            'pullsnap:jobs[0].retention: got "forever"',
            'pullsnap:jobs[1].name: got "main"; must be unique',
        ]) {
            expect(output).toContain(problem);
        }
        expect(output).not.toContain("BEGIN OPENSSH");
        // The list of problems and nothing else: no crash report, no stack, no colour.
        expect(output).not.toMatch(/unhandled exception|^\s+at /im);
        expect(output).not.toContain("\u001b[");
        expect(connections).toBe(0);
    });

    it("refuses a missing or an ssh-rsa host key before any connection, naming the key and how to get it", () => {
        const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----";
        const rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDx";
        // One valid config apart from the host keys, in a stack of its own.
        const keys = new Stack("hostkeys");
        keys.init();
        const set = keys.pulumi(
            "config",
            "set-all",
            "--path",
            ...["--plaintext", "pullsnap:backupServer.connection.host=127.0.0.1"],
            ...["--plaintext", `pullsnap:backupServer.connection.port=${port}`],
            ...["--plaintext", "pullsnap:backupServer.drives[0]=/dev/vdb"],
            ...["--secret", `pullsnap:backupServer.connection.privateKey=${key}`],
            ...["--plaintext", "pullsnap:jobs[0].name=main"],
            ...["--plaintext", "pullsnap:jobs[0].connection.host=127.0.0.1"],
            ...["--plaintext", `pullsnap:jobs[0].connection.port=${port}`],
            ...["--plaintext", `pullsnap:jobs[0].connection.hostKey=${rsa}`],
            ...["--secret", `pullsnap:jobs[0].connection.privateKey=${key}`],
            ...["--plaintext", "pullsnap:jobs[0].pullAddress.host=10.0.2.2"],
        );
        expect(set.status, set.stderr).toBe(0);
        const before = connections;
        const preview = keys.pulumi("preview", "--color", "always");
        keys.remove();
        const output = preview.stdout + preview.stderr;
        expect(preview.status).not.toBe(0);
        expect(output).toContain(
            `pullsnap:backupServer.connection.hostKey: got missing; is required: every SSH connection checks a pinned host key; its value is what this prints: ssh-keyscan -t ed25519 -p ${port} 127.0.0.1 | cut -d' ' -f2,3`,
        );
        expect(output).toContain(
            `pullsnap:jobs[0].connection.hostKey: got "${rsa}"; is an ssh-rsa key, which @pulumi/command 1.2.1 can only verify with SHA-1 signatures that OpenSSH 8.8 and later refuse`,
        );
        expect(output).not.toMatch(/unhandled exception|^\s+at /im);
        expect(connections - before).toBe(0);
    });
});
