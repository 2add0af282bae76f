import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { hostFile, renderScript } from "./remoteScript";
import { remoteStep, stepReport } from "./hostConnection";
import { checkedStep, HostCheck } from "./hostCheck";

export interface SourceSettings {
    /** The backup server's public key, the only key rsyncr accepts. */
    readonly backupPublicKey: string;
    /** authorized_keys from= patterns, or "" for any address. */
    readonly from: string;
    /** The job's paths: the only ones the forced command lets the backup key read. */
    readonly paths: readonly string[];
}

export interface SourceHostArgs {
    /** SSH connection Pulumi uses to provision the source host. */
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** The backup server's public key, fed into rsyncr's authorized_keys. */
    readonly backupPublicKey: pulumi.Input<string>;
    /** Restricts where the backup key is accepted from (authorized_keys from=). */
    readonly from?: pulumi.Input<string>;
    /** The job's paths, exactly as the runner asks for them. */
    readonly paths: readonly string[];
}

/** The script that sets up rsyncr, its capability copy of rsync and its key. */
export function setupSourceScript(settings: SourceSettings): string {
    return renderScript({
        vars: { BACKUP_PUBLIC_KEY: settings.backupPublicKey, FROM: settings.from, JOB_PATHS: [...settings.paths] },
        files: {
            GATE: hostFile("source/rsync-gate"),
            REFRESH: hostFile("source/refresh-rsync-copy"),
            APT_HOOK: hostFile("source/apt-hook.conf"),
            PACMAN_HOOK: hostFile("source/pacman-hook.hook"),
        },
        script: hostFile("source/setup-source.sh"),
    });
}

/** Reports what setup-source.sh manages; HostCheck compares it on every preview. */
export function checkSourceScript(): string {
    return renderScript({ files: { CHECK_LIB: hostFile("lib/check.sh") }, script: hostFile("source/check-source.sh") });
}

export function removeSourceScript(): string {
    return renderScript({ script: hostFile("source/remove-source.sh") });
}

/**
 * A host pullsnap backs up (the seed's "main server"): the unprivileged rsyncr
 * user with a private copy of rsync carrying cap_dac_read_search, so it reads
 * everything and writes nothing, reachable only through a forced command.
 * `pulumi destroy` removes the user, its copy, its key and the package hooks.
 */
export class SourceHost extends pulumi.ComponentResource {
    /** Reads the host on every preview; names and repairs what was changed by hand. */
    public readonly check: HostCheck;

    constructor(name: string, args: SourceHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("pullsnap:index:SourceHost", name, {}, opts);
        const setup = remoteStep(
            `${name}-rsyncr`,
            {
                connection: args.connection,
                create: pulumi
                    .all([args.backupPublicKey, args.from ?? ""])
                    .apply(([backupPublicKey, from]) => setupSourceScript({ backupPublicKey, from, paths: args.paths })),
                delete: removeSourceScript(),
                check: checkSourceScript(),
            },
            { parent: this },
        );
        this.check = new HostCheck(
            `${name}-check`,
            {
                connection: args.connection,
                checkScript: checkSourceScript(),
                repairScripts: [checkedStep(setup).script],
                expected: stepReport(setup),
            },
            { parent: this },
        );
        this.registerOutputs({});
    }
}
