import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { Connection } from "./config";

/** The SSH connection of a remote step, with the private key kept a Pulumi secret. */
export function sshConnection(connection: Connection): command.types.input.remote.ConnectionArgs {
    return {
        host: connection.host,
        port: connection.port,
        user: connection.user,
        privateKey: pulumi.secret(connection.privateKey),
        hostKey: connection.hostKey,
        // A host that is still booting gets about a minute before we give up.
        dialErrorLimit: 12,
        perDialTimeout: 10,
    };
}

/** Reads the JSON lines a step prints on stdout (its script's, then its check's) as one object. */
export function scriptResult<T>(stdout: pulumi.Output<string>): pulumi.Output<T> {
    // Host scripts log to stderr; only JSON lines on stdout are data.
    return stdout.apply(
        (out) =>
            Object.assign(
                {},
                ...out
                    .split("\n")
                    .filter((line) => line.startsWith("{"))
                    .map((line) => JSON.parse(line) as object),
            ) as T,
    );
}

/** The report a step's check printed after provisioning: what HostCheck expects to find. */
export function stepReport(step: command.remote.Command): pulumi.Output<string> {
    return pulumi.unsecret(scriptResult<{ report?: string }>(step.stdout).apply((r) => r.report ?? ""));
}

export interface RemoteStepArgs {
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** The whole step, rendered by renderScript; a change re-runs it. */
    readonly create: pulumi.Input<string>;
    /** How `pulumi destroy` undoes the step, or says why it must not. */
    readonly delete: pulumi.Input<string>;
    /** The step's part of the host check, run right after it: its report is what HostCheck expects. */
    readonly check?: pulumi.Input<string>;
    /** What the script reads on stdin (renderScript's stdinFile): secrets stay out of the command. */
    readonly stdin?: pulumi.Input<string>;
}

/** A step's script followed by its check, in the same session. */
export function withCheck(create: string, check: string): string {
    return `${create} && ${check}`;
}

/** One SSH session on a host: an idempotent script, re-run when its text changes. */
export function remoteStep(name: string, args: RemoteStepArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
    return new command.remote.Command(
        name,
        {
            connection: args.connection,
            create: args.check === undefined ? args.create : pulumi.all([args.create, args.check]).apply(([c, k]) => withCheck(c, k)),
            delete: args.delete,
            stdin: args.stdin,
            // Passing the previous output needs sshd AcceptEnv, which stock sshd lacks.
            addPreviousOutputInEnv: false,
        },
        opts,
    );
}
