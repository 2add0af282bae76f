import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { hostFile, renderScript } from "./remoteScript";
import { remoteStep, scriptResult } from "./hostConnection";
import { checkedStep, checkServerScript, CheckedStep } from "./hostCheck";

export interface VolumeLayout {
    /** Whole drives, each partitioned GPT 1MiB-100%. */
    readonly drives: string[];
    /** Drives that may be wiped although they hold data. */
    readonly wipeDrives: string[];
    /** Drives to take out of the volume; their data moves to the others first. */
    readonly removeDrives: string[];
    /** Btrfs label, "backup" in the seed. */
    readonly label: string;
    /** Where fstab mounts the volume, "/plus/backup" in the seed. */
    readonly mountPoint: string;
    readonly dataProfile: string;
    readonly metadataProfile: string;
}

export interface BtrfsVolumeArgs {
    /** SSH connection to the backup server. */
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** Drives, label, mount point and profiles. */
    readonly layout: pulumi.Input<VolumeLayout>;
}

/** The script that builds or adopts the volume; pure, so tests can run it on loop devices. */
export function prepareVolumeScript(layout: VolumeLayout): string {
    return renderScript({
        vars: {
            LABEL: layout.label,
            MOUNT_POINT: layout.mountPoint,
            DATA_PROFILE: layout.dataProfile,
            METADATA_PROFILE: layout.metadataProfile,
            DRIVES: layout.drives,
            WIPE_DRIVES: layout.wipeDrives,
            REMOVE_DRIVES: layout.removeDrives,
        },
        script: hostFile("backup-server/prepare-volume.sh"),
    });
}

/**
 * The Btrfs volume on the backup server's drives, mounted nosuid,nodev,noexec.
 * `pulumi destroy` leaves it, its fstab line and every snapshot in place:
 * backup data is never destroyed by pullsnap.
 */
export class BtrfsVolume extends pulumi.ComponentResource {
    /** The volume's filesystem UUID, as fstab mounts it. */
    public readonly uuid: pulumi.Output<string>;
    /** The partitions the volume spans. */
    public readonly devices: pulumi.Output<string[]>;
    public readonly mountPoint: pulumi.Output<string>;
    /** The volume step's part of the backup server's HostCheck. */
    public readonly checkedStep: CheckedStep;

    constructor(name: string, args: BtrfsVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("pullsnap:index:BtrfsVolume", name, {}, opts);
        const prepare = remoteStep(
            `${name}-prepare`,
            {
                connection: args.connection,
                create: pulumi.output(args.layout).apply(prepareVolumeScript),
                delete: 'echo "pullsnap never deletes the backup volume: its drives, fstab line and snapshots stay" >&2',
                check: pulumi.output(args.layout).apply((layout) => checkServerScript({ mountPoint: layout.mountPoint })),
            },
            { parent: this },
        );
        const result = scriptResult<{ uuid: string; devices: string[] }>(prepare.stdout);
        this.uuid = result.uuid;
        this.devices = result.devices;
        this.mountPoint = pulumi.output(args.layout).mountPoint;
        this.checkedStep = checkedStep(prepare);
        this.registerOutputs({ uuid: this.uuid, devices: this.devices, mountPoint: this.mountPoint });
    }
}
