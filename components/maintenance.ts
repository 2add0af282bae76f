import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Alerts } from "./config";
import { CONFIG_DIR, hostFile, renderScript, renderUnit, RUNNER_PATH } from "./remoteScript";
import { remoteStep } from "./hostConnection";
import { checkedStep, CheckedStep, checkServerScript } from "./hostCheck";

/** The seed's maintenance, as configured. */
export interface MaintenanceSettings {
    /** Where the Btrfs volume is mounted. */
    readonly mountPoint: string;
    /** The volume's whole drives, whose SMART health `pullsnap status` shows. */
    readonly drives: string[];
    /** When the scrub timer fires (systemd OnCalendar). */
    readonly scrubSchedule: string;
    readonly metricsDir?: string;
    /** The one channel for failed and stale backups, scrub errors and SMART warnings. */
    readonly alerts?: Alerts;
}

export interface MaintenanceArgs {
    /** SSH connection to the backup server. */
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    readonly settings: MaintenanceSettings;
}

/** The runner's server-wide config, /etc/pullsnap/pullsnap.conf; data, never sourced. */
export function renderServerConfig(settings: MaintenanceSettings): string {
    const { alerts } = settings;
    const lines = [
        "# Written by pullsnap (Pulumi). The next `pulumi up` reverts hand edits.",
        `mount=${settings.mountPoint}`,
        ...settings.drives.map((d) => `drive=${d}`),
        ...(settings.metricsDir === undefined ? [] : [`metrics_dir=${settings.metricsDir}`]),
        ...(alerts === undefined ? [] : [`alert_format=${alerts.format}`, `alert_url=${alerts.url}`]),
        ...(alerts?.matrixRoom === undefined ? [] : [`alert_matrix_room=${alerts.matrixRoom}`]),
        ...(alerts?.matrixToken === undefined ? [] : [`alert_matrix_token=${alerts.matrixToken}`]),
    ];
    return `${lines.join("\n")}\n`;
}

export const SMARTD_ALERT_PATH = "/usr/local/lib/pullsnap/smartd-alert";

/**
 * smartd.conf: every SMART-capable drive (DEVICESCAN skips virtual disks
 * instead of failing on them), all checks, a short self-test daily at 02:00 and
 * a long one on Saturdays at 03:00, temperature warnings, and a daily reminder
 * while a problem lasts, sent through pullsnap's alert channel.
 */
export function renderSmartdConfig(): string {
    return [
        "# Written by pullsnap (Pulumi). The next `pulumi up` reverts hand edits.",
        `DEVICESCAN -a -o on -S on -n standby,q -s (S/../.././02|L/../../6/03) -W 4,45,55 -m <nomailer> -M daily -M exec ${SMARTD_ALERT_PATH}`,
        "",
    ].join("\n");
}

export function installMaintenanceScript(settings: MaintenanceSettings): string {
    const values = {
        RUNNER: RUNNER_PATH,
        CONFIG_DIR,
        MOUNT: settings.mountPoint,
        METRICS_DIR: settings.metricsDir ?? "",
        SCRUB_SCHEDULE: settings.scrubSchedule,
    };
    const unit = (name: string) => renderUnit(hostFile(`backup-server/${name}.in`), values);
    return renderScript({
        vars: { METRICS_DIR: settings.metricsDir ?? "", DRIVES: settings.drives },
        // The server config holds the alert channel's secrets: it travels on stdin.
        stdinFile: "SERVER_CONF",
        files: {
            SMARTD_CONF: renderSmartdConfig(),
            SMARTD_ALERT: hostFile("backup-server/smartd-alert"),
            SCRUB_SERVICE: unit("pullsnap-scrub.service"),
            SCRUB_TIMER: unit("pullsnap-scrub.timer"),
            WATCH_SERVICE: unit("pullsnap-watch.service"),
            WATCH_TIMER: unit("pullsnap-watch.timer"),
        },
        script: hostFile("backup-server/install-maintenance.sh"),
    });
}

/**
 * The seed's maintenance on the backup server: a monthly scrub, smartd
 * watching the drives, an hourly check for stale backups, and the alert
 * channel all of them (and failed runs) report to. The alert URL and token
 * reach the host on the step's stdin, a Pulumi secret: never in its command,
 * which a failed step's error quotes whole.
 */
export class Maintenance extends pulumi.ComponentResource {
    /** The maintenance step's part of the backup server's HostCheck. */
    public readonly checkedStep: CheckedStep;

    constructor(name: string, args: MaintenanceArgs, opts?: pulumi.ComponentResourceOptions) {
        super("pullsnap:index:Maintenance", name, {}, opts);
        const serverConfig = renderServerConfig(args.settings);
        const stdin = args.settings.alerts === undefined ? serverConfig : pulumi.secret(serverConfig);
        const install = remoteStep(
            `${name}-install`,
            {
                connection: args.connection,
                create: installMaintenanceScript(args.settings),
                stdin,
                delete: renderScript({ script: hostFile("backup-server/remove-maintenance.sh") }),
                check: checkServerScript({ maintenance: true }),
            },
            { parent: this },
        );
        this.checkedStep = checkedStep(install, stdin);
        this.registerOutputs({});
    }
}
