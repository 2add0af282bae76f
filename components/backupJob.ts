import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Job } from "./config";
import { CONFIG_DIR, hostFile, renderScript, renderUnit, RUNNER_PATH } from "./remoteScript";
import { remoteStep, scriptResult } from "./hostConnection";
import { checkedStep, checkServerScript, CheckedStep } from "./hostCheck";

export interface BackupJobArgs {
    /** SSH connection to the backup server. */
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** The job as configured: source, paths, schedule, retention. */
    readonly job: Job;
    /** Where the Btrfs volume is mounted on the backup server. */
    readonly mountPoint: pulumi.Input<string>;
    /** The source's SSH host key, pinned for the pull address. */
    readonly sourceHostKey: pulumi.Input<string>;
    /** Where the runner writes Prometheus textfile metrics, if anywhere. */
    readonly metricsDir?: string;
}

/** The runner's config for one job (see `pullsnap --help`); data, never sourced. */
export function renderJobConfig(job: Job, mountPoint: string, metricsDir?: string): string {
    const lines = [
        "# Written by pullsnap (Pulumi). The next `pulumi up` reverts hand edits.",
        `source_host=${job.pullAddress.host}`,
        `source_port=${job.pullAddress.port}`,
        "source_user=rsyncr",
        `ssh_key=${CONFIG_DIR}/id_ed25519`,
        `known_hosts=${CONFIG_DIR}/known_hosts.d/${job.name}`,
        `mount=${mountPoint}`,
        ...job.paths.map((p) => `path=${p}`),
        ...job.excludes.map((e) => `exclude=${e}`),
        `preserve_min=${job.retention.minimum}`,
        `preserve=${job.retention.preserve}`,
        `max_age=${job.maxAge}`,
        ...(metricsDir === undefined ? [] : [`metrics_dir=${metricsDir}`]),
    ];
    return `${lines.join("\n")}\n`;
}

/** A known_hosts line for the address the backup server pulls from. */
export function knownHostsLine(address: { host: string; port: number }, hostKey: string): string {
    const host = address.port === 22 ? address.host : `[${address.host}]:${address.port}`;
    return `${host} ${hostKey}\n`;
}

export function installJobScript(job: Job, mountPoint: string, sourceHostKey: string, metricsDir?: string): string {
    const values = {
        JOB: job.name,
        ON_CALENDAR: job.schedule,
        MOUNT: mountPoint,
        RUNNER: RUNNER_PATH,
        CONFIG_DIR,
        METRICS_DIR: metricsDir ?? "",
    };
    return renderScript({
        vars: { JOB: job.name, SCHEDULE: job.schedule, MOUNT_POINT: mountPoint },
        files: {
            JOB_CONF: renderJobConfig(job, mountPoint, metricsDir),
            KNOWN_HOSTS: knownHostsLine(job.pullAddress, sourceHostKey),
            SERVICE_UNIT: renderUnit(hostFile("backup-server/backup_job.service.in"), values),
            TIMER_UNIT: renderUnit(hostFile("backup-server/backup_job.timer.in"), values),
        },
        script: hostFile("backup-server/install-job.sh"),
    });
}

export function removeJobScript(jobName: string): string {
    return renderScript({ vars: { JOB: jobName }, script: hostFile("backup-server/remove-job.sh") });
}

/**
 * One source pulled on a schedule: the runner's job config, the source's
 * pinned host key and the backup_<job> service and timer on the backup server.
 * `pulumi destroy` removes the timer, units and config; the job's snapshots stay.
 */
export class BackupJob extends pulumi.ComponentResource {
    /** The systemd timer that starts the job, e.g. backup_main.timer. */
    public readonly timer: pulumi.Output<string>;
    /** The job step's part of the backup server's HostCheck. */
    public readonly checkedStep: CheckedStep;

    constructor(name: string, args: BackupJobArgs, opts?: pulumi.ComponentResourceOptions) {
        super("pullsnap:index:BackupJob", name, {}, opts);
        const install = remoteStep(
            `${name}-units`,
            {
                connection: args.connection,
                create: pulumi
                    .all([args.mountPoint, args.sourceHostKey])
                    .apply(([mountPoint, hostKey]) => installJobScript(args.job, mountPoint, hostKey, args.metricsDir)),
                delete: removeJobScript(args.job.name),
                check: checkServerScript({ jobs: [args.job.name] }),
            },
            { parent: this },
        );
        this.timer = pulumi.unsecret(scriptResult<{ timer: string }>(install.stdout).timer);
        this.checkedStep = checkedStep(install);
        this.registerOutputs({ timer: this.timer });
    }
}
