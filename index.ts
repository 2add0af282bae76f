// pullsnap: the seed's pull-based backup installation, declared.
// Reads and validates the whole stack config first, so a bad value fails
// `pulumi preview` before any SSH connection.
import * as pulumi from "@pulumi/pulumi";
import { BackupJob } from "./components/backupJob";
import { BackupServer } from "./components/backupServer";
import { checkServerScript, HostCheck, joinReports } from "./components/hostCheck";
import { ConfigError, parseConfig, ResolvedConfig } from "./components/config";
import { sshConnection } from "./components/hostConnection";
import { SourceHost } from "./components/sourceHost";

/** The validated stack config; a bad one ends the run with the list of problems and nothing else. */
function loadConfig(): ResolvedConfig {
    const raw = new pulumi.Config("pullsnap");
    try {
        return parseConfig({ backupServer: raw.getObject("backupServer"), jobs: raw.getObject("jobs"), alerts: raw.getObject("alerts") });
    } catch (e) {
        // A RunError is printed without a stack trace: the message is the whole story.
        throw e instanceof ConfigError ? new pulumi.RunError(e.message) : e;
    }
}

const config = loadConfig();
const { volume, drives, wipeDrives, removeDrives, scrubSchedule, metricsDir } = config.backupServer;

const server = new BackupServer("backup", {
    connection: sshConnection(config.backupServer.connection),
    volume: { ...volume, drives, wipeDrives, removeDrives },
    maintenance: { scrubSchedule, metricsDir, alerts: config.alerts },
});

const jobs = config.jobs.map((job) => {
    const source = new SourceHost(`${job.name}-source`, {
        connection: sshConnection(job.connection),
        backupPublicKey: server.publicKey,
        from: job.from,
        paths: job.paths,
    });
    const backupJob = new BackupJob(
        job.name,
        {
            connection: sshConnection(config.backupServer.connection),
            job,
            mountPoint: server.volume.mountPoint,
            // The key the operator pinned, which every provisioning session to the source verified.
            sourceHostKey: job.connection.hostKey,
            metricsDir,
        },
        { dependsOn: [server, source] },
    );
    return { backupJob, summary: { name: job.name, timer: backupJob.timer, schedule: job.schedule, source: job.pullAddress.host } };
});

// One check for the whole backup server, so a preview costs it one SSH session;
// it needs the job steps too, so it is declared here rather than in BackupServer.
const serverSteps = [...server.checkedSteps, ...jobs.map((j) => j.backupJob.checkedStep)];
new HostCheck(
    "backup-check",
    {
        connection: sshConnection(config.backupServer.connection),
        checkScript: checkServerScript({
            runner: true,
            mountPoint: volume.mountPoint,
            maintenance: true,
            jobs: config.jobs.map((j) => j.name),
        }),
        repairScripts: serverSteps.map((s) => s.script),
        expected: pulumi.all(serverSteps.map((s) => s.report)).apply(joinReports),
    },
    { dependsOn: jobs.map((j) => j.backupJob) },
);

export const backupPublicKey = server.publicKey;
export const mountPoint = server.volume.mountPoint;
export const volumeDevices = server.volume.devices;
export const volumeUuid = server.volume.uuid;
export const backupJobs = jobs.map((j) => j.summary);
