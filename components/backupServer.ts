import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { BtrfsVolume, VolumeLayout } from "./btrfsVolume";
import { hostFile, renderScript } from "./remoteScript";
import { remoteStep, scriptResult } from "./hostConnection";
import { checkedStep, CheckedStep, checkServerScript } from "./hostCheck";
import { Maintenance, MaintenanceSettings } from "./maintenance";

export interface BackupServerArgs {
    /** SSH connection Pulumi uses to provision the backup server. */
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** The Btrfs volume's drives, label, mount point and profiles. */
    readonly volume: VolumeLayout;
    /** Scrub schedule, metrics folder and the alert channel. */
    readonly maintenance: Omit<MaintenanceSettings, "mountPoint" | "drives">;
}

export function prepareServerScript(): string {
    return renderScript({ files: { RUNNER: hostFile("backup-server/pullsnap") }, script: hostFile("backup-server/prepare-server.sh") });
}

export function removeServerScript(): string {
    return renderScript({ script: hostFile("backup-server/remove-server.sh") });
}

/**
 * The host that pulls and keeps the snapshots: packages, the runner, root's
 * backup key (generated there, never leaving it), the Btrfs volume and its
 * maintenance (scrub, SMART, alerts).
 */
export class BackupServer extends pulumi.ComponentResource {
    /** The backup key's public half, authorized on every source host. */
    public readonly publicKey: pulumi.Output<string>;
    public readonly volume: BtrfsVolume;
    /** The runner and volume steps, in order, for the host's HostCheck. */
    public readonly checkedSteps: CheckedStep[];

    constructor(name: string, args: BackupServerArgs, opts?: pulumi.ComponentResourceOptions) {
        super("pullsnap:index:BackupServer", name, {}, opts);
        const prepare = remoteStep(
            `${name}-runner`,
            {
                connection: args.connection,
                create: prepareServerScript(),
                delete: removeServerScript(),
                check: checkServerScript({ runner: true }),
            },
            { parent: this },
        );
        this.publicKey = pulumi.unsecret(scriptResult<{ publicKey: string }>(prepare.stdout).publicKey);
        this.volume = new BtrfsVolume(
            `${name}-volume`,
            { connection: args.connection, layout: args.volume },
            { parent: this, dependsOn: prepare },
        );
        const maintenance = new Maintenance(
            `${name}-maintenance`,
            {
                connection: args.connection,
                settings: { ...args.maintenance, mountPoint: args.volume.mountPoint, drives: args.volume.drives },
            },
            { parent: this, dependsOn: this.volume },
        );
        this.checkedSteps = [checkedStep(prepare), this.volume.checkedStep, maintenance.checkedStep];
        this.registerOutputs({ publicKey: this.publicKey });
    }
}
