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

/** Reads the one JSON line a host script prints on stdout. */
export function scriptResult<T>(stdout: pulumi.Output<string>): pulumi.Output<T> {
    // Host scripts log to stderr; only their last stdout line is data.
    return stdout.apply((out) => JSON.parse(out.trim().split("\n").pop() ?? "{}") as T);
}

export interface RemoteStepArgs {
    readonly connection: pulumi.Input<command.types.input.remote.ConnectionArgs>;
    /** The whole step, rendered by renderScript; a change re-runs it. */
    readonly create: pulumi.Input<string>;
    /** How `pulumi destroy` undoes the step, or says why it must not. */
    readonly delete: pulumi.Input<string>;
}

/** One SSH session on a host: an idempotent script, re-run when its text changes. */
export function remoteStep(name: string, args: RemoteStepArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
    return new command.remote.Command(
        name,
        {
            ...args,
            // Passing the previous output needs sshd AcceptEnv, which stock sshd lacks.
            addPreviousOutputInEnv: false,
        },
        opts,
    );
}
