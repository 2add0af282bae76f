// The stack configuration: one zod schema is the single source of truth for
// what `pulumi config` may hold. Every problem is collected and reported at
// once, before any SSH connection, naming the key path, the bad value and what
// is allowed.
import { z } from "zod";

/** Builds a strict object whose unknown-key error lists the allowed keys. */
function strict<T extends z.ZodRawShape>(shape: T) {
    const allowed = Object.keys(shape).join(", ");
    return z.strictObject(shape, {
        error: (issue) =>
            issue.code === "unrecognized_keys"
                ? `unknown key ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}; allowed: ${allowed}`
                : undefined,
    });
}

// Rules are regexes, not refines, so that they reach the JSON Schema the
// backup server validates against (components/configSchema.ts). The patterns
// stay in the part of ECMA-262 that Go's RE2 also reads: no lookaround, no
// backreferences.

/** Matches a string that does not start with `prefix` (a lookahead-free `^(?!prefix)`). */
function notStartingWith(prefix: string): RegExp {
    const escape = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
    const body = [...prefix].reduceRight(
        (rest, c, i) => `(?:$|[^${escape(c)}]${i === prefix.length - 1 ? "" : `|${escape(c)}${rest}`})`,
        "",
    );
    return new RegExp(`^${body}`);
}

// No segment is "..": each one is empty, ".", or does not start with "..", or is longer than "..".
const noDotDotSegment = /^(?:[^/.][^/]*|\.|\.[^/.][^/]*|\.\.[^/]+)?(?:\/(?:[^/.][^/]*|\.|\.[^/.][^/]*|\.\.[^/]+)?)*$/;

const absolutePath = z
    .string()
    .regex(/^\/[^\0\n]*$/, "must be an absolute path starting with /")
    .regex(noDotDotSegment, "must not contain ..");

// A job path travels verbatim to the source's forced command, which compares
// it literally: plain characters only, so no client ever quotes or escapes it.
const jobPath = z
    .string()
    .regex(
        /^\/([A-Za-z0-9_,=+@-][A-Za-z0-9._,=+@-]*(\/[A-Za-z0-9_,=+@-][A-Za-z0-9._,=+@-]*)*)?$/,
        'must be a plain absolute path: letters, digits and ._,=+@- between single slashes, no segment starting with ".", no trailing slash',
    );

const devicePath = z.string().regex(/^\/dev\/[A-Za-z0-9._/-]+$/, "must be a block device path under /dev/, e.g. /dev/sdb");

// Hostnames, IPv4 and IPv6 literals; nothing a shell or ssh_config could misread.
const hostAddress = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$/, "must be a hostname or an IP address");

const port = z.number().int().min(1).max(65535);

// The pinned host key of an SSH connection. RSA is refused: for a pinned
// ssh-rsa key, @pulumi/command 1.2.1 offers only SHA-1 "ssh-rsa" signatures,
// which OpenSSH 8.8 and later no longer make, so every step would fail.
const sshHostKey = z
    .string({ error: (issue) => (issue.input === undefined ? "is required: every SSH connection checks a pinned host key" : undefined) })
    .regex(
        notStartingWith("ssh-rsa "),
        "is an ssh-rsa key, which @pulumi/command 1.2.1 can only verify with SHA-1 signatures that OpenSSH 8.8 and later refuse; pin the host's ed25519 or ecdsa key",
    )
    // An ssh-rsa key passes here so that it gets only the message above.
    .regex(
        /^(?:ssh-rsa |(?:ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)) [A-Za-z0-9+/]+={0,3}$)/,
        'must be an SSH host key "TYPE BASE64" (ssh-ed25519 or ecdsa-sha2-nistp256/384/521) without a comment',
    );

/** How the operator's machine (Pulumi) reaches a host to provision it. */
export const Connection = strict({
    host: hostAddress,
    port: port.default(22),
    user: z
        .string()
        .regex(/^[a-z_][a-z0-9_-]*$/, "must be a POSIX user name")
        .default("root"),
    /** Set with `pulumi config set --secret --path`; never stored in plain text. */
    privateKey: z.string().includes("PRIVATE KEY", { message: "must be an OpenSSH private key (PEM text)" }),
    /** The host's SSH key ("TYPE BASE64", ed25519 or ecdsa); every connection checks it. */
    hostKey: sshHostKey,
});
export type Connection = z.infer<typeof Connection>;

// systemd OnCalendar: the shorthands, or an expression made of calendar
// characters. systemd-analyze on the backup host has the final word; this
// catches typos before any host is touched.
const calendarShorthands = ["minutely", "hourly", "daily", "weekly", "monthly", "quarterly", "semiannually", "yearly", "annually"];
const calendarExpression = /((Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*[,.]*)*\s*[0-9*][0-9*:/,.~ -]*( UTC)?/;
const onCalendar = z
    .string()
    .regex(
        new RegExp(`^(?:${calendarShorthands.join("|")}|${calendarExpression.source})$`),
        `must be a systemd OnCalendar expression: ${calendarShorthands.join(", ")} or e.g. "*-*-* 03:00:00"`,
    );

const duration = z.string().regex(/^[1-9][0-9]*[hdwmy]$/, 'must be a number followed by h, d, w, m or y, e.g. "36h" or "2d"');

// How long a job may go without a success. The runner counts it in s, min, h, d
// or w: no months, since "1m" would read as a minute in one place and a month in another.
const maxAge = z
    .string()
    .regex(/^[1-9][0-9]{0,8}(s|min|h|d|w)$/, 'must be a number followed by s, min, h, d or w, e.g. "36h", "2d" or "90min"');

// btrbk's snapshot_preserve: a count per calendar unit, "*" for forever,
// units in ascending order, each at most once.
// Two patterns with one message: the first allows a blank string, which the
// second refuses; no string fails both.
const preserveMessage = 'must list counts per unit in order h d w m y, "*" for forever, e.g. "24h 7d 4w 12m *y"';
const preserveSchedule = z
    .string()
    .regex(/^(\s*([0-9]+|\*)h)?(\s*([0-9]+|\*)d)?(\s*([0-9]+|\*)w)?(\s*([0-9]+|\*)m)?(\s*([0-9]+|\*)y)?\s*$/, preserveMessage)
    .regex(/\S/, preserveMessage);

/** Which snapshots a job keeps, with btrbk's calendar semantics. */
export const Retention = strict({
    /** Keep every snapshot younger than this. */
    minimum: duration.default("2d"),
    /** Then keep the first snapshot of each hour/day/week/month/year, this many of each. */
    preserve: preserveSchedule.default("24h 7d 4w 12m *y"),
});

// The authorized_keys from= option: comma-separated patterns of hosts or
// addresses (CIDR allowed), optionally negated with "!".
const fromPatterns = z
    .string()
    .regex(
        /^!?[A-Za-z0-9.:*?/-]+(,!?[A-Za-z0-9.:*?/-]+)*$/,
        'must be comma-separated host or address patterns, e.g. "192.0.2.10,10.0.0.0/8"',
    );

const rsyncExclude = z.string().regex(/^[^\n\0]+$/, "must be one rsync exclude pattern on one line");

/** One source host pulled into the volume, with its own timer. */
export const Job = strict({
    /** Names the job's folder, its config file and its backup_<name> units. */
    name: z
        .string()
        .regex(/^[a-z][a-z0-9-]{0,31}$/, "must be lowercase letters, digits and -, starting with a letter, at most 32 characters"),
    /** How Pulumi reaches the source host to set up rsyncr. */
    connection: Connection,
    /** How the backup server reaches the source host; differs from the operator's route. */
    pullAddress: strict({ host: hostAddress, port: port.default(22) }),
    /** Folders pulled from the source, each on its own filesystem. */
    paths: z.array(jobPath).min(1).default(["/"]),
    /** rsync patterns skipped in addition to the built-in ones (/proc, /sys, /dev, /run, /tmp, ...). */
    excludes: z.array(rsyncExclude).default([]),
    /** When the job's timer fires (systemd OnCalendar). */
    schedule: onCalendar.default("daily"),
    retention: Retention.default({ minimum: "2d", preserve: "24h 7d 4w 12m *y" }),
    /** `pullsnap status` fails when the last success is older than this. */
    maxAge: maxAge.default("36h"),
    /** Restricts where the backup key is accepted from (authorized_keys from=). */
    from: fromPatterns.optional(),
});
export type Job = z.infer<typeof Job>;

const btrfsProfile = z.enum(["single", "dup", "raid0", "raid1", "raid1c3", "raid1c4", "raid10"]);
const minDrives: Record<string, number> = { single: 1, dup: 1, raid0: 2, raid1: 2, raid1c3: 3, raid1c4: 4, raid10: 4 };

export const Volume = strict({
    label: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,255}$/, "must be letters, digits, _ and -")
        .default("backup"),
    mountPoint: absolutePath.regex(/^(?:$|[^/]|\/[\d\D])/, "must not be /").default("/plus/backup"),
    dataProfile: btrfsProfile.default("single"),
    /** Defaults to raid1, or dup with a single drive. */
    metadataProfile: btrfsProfile.optional(),
});

/** The host that pulls and keeps the snapshots. */
export const BackupServer = strict({
    connection: Connection,
    /** Whole drives for the Btrfs volume; each gets one GPT partition 1MiB-100%. */
    drives: z.array(devicePath).min(1),
    /** Drives that may be wiped although they hold a filesystem or partition table. */
    wipeDrives: z.array(devicePath).default([]),
    /** Drives to take out of the volume with `btrfs device remove`, which first moves their data to the others. */
    removeDrives: z.array(devicePath).default([]),
    volume: Volume.default({ label: "backup", mountPoint: "/plus/backup", dataProfile: "single" }),
    /** When `btrfs scrub` reads the whole volume back and checks every checksum (systemd OnCalendar). */
    scrubSchedule: onCalendar.default("monthly"),
    /** A folder for Prometheus textfile metrics (node_exporter's textfile collector), or none. */
    metricsDir: absolutePath.optional(),
});

const httpUrl = z.string().regex(/^https?:\/\/[^\s"'\\]+$/, "must be an http:// or https:// URL without spaces or quotes");

/**
 * One channel for every alert: failed and stale backups, scrub errors, SMART
 * warnings. The URL and token are secrets: set them with `pulumi config set --secret`.
 */
export const Alerts = strict({
    format: z.enum(["slack", "matrix"]),
    /** Slack: the incoming-webhook URL. Matrix: the homeserver's base URL. */
    url: httpUrl,
    /** Matrix only: the room to post in, e.g. "!abcdef:example.org". */
    matrixRoom: z
        .string()
        .regex(/^![A-Za-z0-9._=-]+:[A-Za-z0-9.:-]+$/, 'must be a Matrix room id, e.g. "!abcdef:example.org"')
        .optional(),
    /** Matrix only: the access token of the account that posts. */
    matrixToken: z
        .string()
        .regex(/^[A-Za-z0-9._~+/=-]+$/, "must be a Matrix access token (letters, digits and ._~+/=-)")
        .optional(),
});
export type Alerts = z.infer<typeof Alerts>;

export const StackConfig = strict({
    backupServer: BackupServer,
    jobs: z.array(Job).min(1),
    alerts: Alerts.optional(),
});
export type StackConfig = z.infer<typeof StackConfig>;

interface Problem {
    path: PropertyKey[];
    message: string;
}

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const field = (v: unknown, key: string): unknown => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[key] : undefined);

// Rules across keys. They read the raw input defensively, so they report
// alongside per-field problems instead of waiting for those to be fixed.
function crossKeyProblems(input: unknown): Problem[] {
    const problems: Problem[] = [];
    const names = asArray(field(input, "jobs")).map((job) => field(job, "name"));
    names.forEach((name, i) => {
        if (typeof name === "string" && names.indexOf(name) !== i) {
            problems.push({ path: ["jobs", i, "name"], message: "must be unique; another job already has this name" });
        }
    });
    const server = field(input, "backupServer");
    const drives = asArray(field(server, "drives"));
    drives.forEach((d, i) => {
        if (drives.indexOf(d) !== i) {
            problems.push({ path: ["backupServer", "drives", i], message: "is listed twice" });
        }
    });
    asArray(field(server, "wipeDrives")).forEach((d, i) => {
        if (!drives.includes(d)) {
            problems.push({ path: ["backupServer", "wipeDrives", i], message: `must also be listed in drives (${drives.join(", ")})` });
        }
    });
    asArray(field(server, "removeDrives")).forEach((d, i) => {
        if (drives.includes(d)) {
            problems.push({
                path: ["backupServer", "removeDrives", i],
                message: "is also listed in drives; a drive is either kept or removed",
            });
        }
    });
    const alerts = field(input, "alerts");
    if (field(alerts, "format") === "matrix") {
        for (const key of ["matrixRoom", "matrixToken"]) {
            if (field(alerts, key) === undefined) {
                problems.push({ path: ["alerts", key], message: "is required when alerts.format is matrix" });
            }
        }
    } else if (field(alerts, "format") === "slack") {
        for (const key of ["matrixRoom", "matrixToken"]) {
            if (field(alerts, key) !== undefined) {
                problems.push({ path: ["alerts", key], message: "is only used when alerts.format is matrix" });
            }
        }
    }
    const volume = field(server, "volume");
    for (const key of ["dataProfile", "metadataProfile"]) {
        const profile = field(volume, key);
        if (typeof profile === "string" && profile in minDrives && drives.length < minDrives[profile]) {
            problems.push({
                path: ["backupServer", "volume", key],
                message: `needs at least ${minDrives[profile]} drives, but ${drives.length} are configured`,
            });
        }
    }
    return problems;
}

/** The stack config with every default filled in and derived values resolved. */
export interface ResolvedConfig extends StackConfig {
    backupServer: StackConfig["backupServer"] & {
        volume: StackConfig["backupServer"]["volume"] & { metadataProfile: z.infer<typeof btrfsProfile> };
    };
}

export class ConfigError extends Error {
    constructor(readonly problems: string[]) {
        super(
            `invalid pullsnap configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`,
        );
        this.name = "ConfigError";
    }
}

const secretKeys = new Set(["privateKey", "url", "matrixToken"]);

/** Formats a path the way `pulumi config set --path` spells it. */
export function configKeyPath(namespace: string, path: PropertyKey[]): string {
    return path.reduce<string>(
        (acc, part) => (typeof part === "number" ? `${acc}[${part}]` : `${acc}${acc.includes(":") ? "." : ":"}${String(part)}`),
        namespace,
    );
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
    return path.reduce<unknown>(
        (v, k) => (v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined),
        input,
    );
}

function describe(value: unknown, path: PropertyKey[]): string {
    if (value === undefined) {
        return "missing";
    }
    if (secretKeys.has(String(path[path.length - 1]))) {
        return "[secret]";
    }
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** For a host key problem: the command that prints the value to pin. */
function hostKeyHint(input: unknown, path: PropertyKey[]): string {
    if (path[path.length - 1] !== "hostKey") {
        return "";
    }
    const connection = valueAt(input, path.slice(0, -1));
    const host = field(connection, "host");
    const port = field(connection, "port") ?? 22;
    const shown = typeof host === "string" && /^[A-Za-z0-9.:-]+$/.test(host) ? host : "HOST";
    return `; its value is what this prints: ssh-keyscan -t ed25519 -p ${String(port)} ${shown} | cut -d' ' -f2,3`;
}

/** Validates raw config; throws one ConfigError listing every problem. */
export function parseConfig(input: unknown, namespace = "pullsnap"): ResolvedConfig {
    const result = StackConfig.safeParse(input);
    const problems: Problem[] = [...(result.error?.issues ?? []), ...crossKeyProblems(input)];
    if (!result.success || problems.length > 0) {
        throw new ConfigError(
            problems.map(({ path, message }) => {
                const where = configKeyPath(namespace, path);
                if (message.startsWith("unknown key")) {
                    return `${where}: ${message}`;
                }
                return `${where}: got ${describe(valueAt(input, path), path)}; ${message}${hostKeyHint(input, path)}`;
            }),
        );
    }
    const cfg = result.data;
    const metadataProfile = cfg.backupServer.volume.metadataProfile ?? (cfg.backupServer.drives.length > 1 ? "raid1" : "dup");
    return { ...cfg, backupServer: { ...cfg.backupServer, volume: { ...cfg.backupServer.volume, metadataProfile } } };
}
