// pullsnap: the seed's pull-based backup installation, declared.
// Reads and validates the whole stack config first, so a bad value fails
// `pulumi preview` before any SSH connection.
import * as pulumi from "@pulumi/pulumi";
import { BackupJob } from "./components/backupJob";
import { BackupServer } from "./components/backupServer";
import { parseConfig } from "./components/config";
import { sshConnection } from "./components/hostConnection";
import { SourceHost } from "./components/sourceHost";

const raw = new pulumi.Config("pullsnap");
const config = parseConfig({ backupServer: raw.getObject("backupServer"), jobs: raw.getObject("jobs") });
const { volume, drives, wipeDrives } = config.backupServer;

const server = new BackupServer("backup", {
    connection: sshConnection(config.backupServer.connection),
    volume: { ...volume, drives, wipeDrives },
});

const jobs = config.jobs.map((job) => {
    const source = new SourceHost(`${job.name}-source`, {
        connection: sshConnection(job.connection),
        backupPublicKey: server.publicKey,
        from: job.from,
        pinnedHostKey: job.connection.hostKey,
    });
    const backupJob = new BackupJob(
        job.name,
        {
            connection: sshConnection(config.backupServer.connection),
            job,
            mountPoint: server.volume.mountPoint,
            sourceHostKey: source.hostKey,
        },
        { dependsOn: [server] },
    );
    return { name: job.name, timer: backupJob.timer, schedule: job.schedule, source: job.pullAddress.host };
});

export const backupPublicKey = server.publicKey;
export const mountPoint = server.volume.mountPoint;
export const volumeDevices = server.volume.devices;
export const volumeUuid = server.volume.uuid;
export const backupJobs = jobs;
