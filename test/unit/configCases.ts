// The table cases of config.test.ts, shared with configContract.test.ts, which
// feeds each one to the JSON Schema side too. A case here is a change to
// validConfig(); the rejected ones carry the exact message `pulumi preview`
// prints.
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";

export const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
export const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxx";
export const RSA_HOST_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7";

export function validConfig() {
    return {
        backupServer: {
            connection: { host: "backup.example.org", privateKey: KEY, hostKey: HOST_KEY },
            drives: ["/dev/sda", "/dev/sdb"],
        },
        jobs: [
            {
                name: "main",
                connection: { host: "main.example.org", privateKey: KEY, hostKey: HOST_KEY } as Record<string, unknown>,
                pullAddress: { host: "192.0.2.10" },
            },
        ],
    };
}

export type Cfg = ReturnType<typeof validConfig> & Record<string, unknown>;
export type Mutation = (c: Cfg) => void;

/** validConfig() changed by one case. */
export function configWith(mutate: Mutation): Cfg {
    const cfg = validConfig() as Cfg;
    mutate(cfg);
    return cfg;
}

export const accepted: [string, Mutation][] = [
    ["a calendar expression", (c) => Object.assign(c.jobs[0], { schedule: "*-*-* 03:00:00" })],
    ["a weekday calendar", (c) => Object.assign(c.jobs[0], { schedule: "Mon..Fri *-*-* 22:30" })],
    ["an IPv6 pull address", (c) => Object.assign(c.jobs[0], { pullAddress: { host: "2001:db8::10", port: 2222 } })],
    ["a from= list", (c) => Object.assign(c.jobs[0], { from: "192.0.2.0/24,!192.0.2.99" })],
    [
        "an ecdsa host key",
        (c) => Object.assign(c.backupServer.connection, { hostKey: "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY=" }),
    ],
    ["a maxAge in minutes", (c) => Object.assign(c.jobs[0], { maxAge: "90min" })],
    ["plain job paths", (c) => Object.assign(c.jobs[0], { paths: ["/", "/srv/data", "/home/a.b_c-d", "/var/lib/x=1,y+z@h"] })],
    ["a wipe list within drives", (c) => Object.assign(c.backupServer, { wipeDrives: ["/dev/sdb"] })],
    ["forever yearly retention", (c) => Object.assign(c.jobs[0], { retention: { minimum: "1d", preserve: "48h 14d *y" } })],
    ["a drive to remove", (c) => Object.assign(c.backupServer, { removeDrives: ["/dev/sdc"] })],
    ["Slack alerts", (c) => Object.assign(c, { alerts: { format: "slack", url: "https://hooks.slack.com/services/T/B/x" } })],
    [
        "Matrix alerts",
        (c) =>
            Object.assign(c, {
                alerts: { format: "matrix", url: "https://matrix.example.org", matrixRoom: "!abc:example.org", matrixToken: "syt_abc" },
            }),
    ],
    ["a weekly scrub and a metrics folder", (c) => Object.assign(c.backupServer, { scrubSchedule: "weekly", metricsDir: "/var/lib/m" })],
];

export const rejected: [string, Mutation, string][] = [
    [
        "a drive without /dev/",
        (c) => (c.backupServer.drives = ["sda"]),
        'pullsnap:backupServer.drives[0]: got "sda"; must be a block device path under /dev/, e.g. /dev/sdb',
    ],
    [
        "retention forever",
        (c) => Object.assign(c.jobs[0], { retention: "forever" }),
        'pullsnap:jobs[0].retention: got "forever"; Invalid input: expected object, received string',
    ],
    [
        "a preserve schedule out of order",
        (c) => Object.assign(c.jobs[0], { retention: { preserve: "7d 24h" } }),
        'pullsnap:jobs[0].retention.preserve: got "7d 24h"; must list counts per unit in order h d w m y, "*" for forever, e.g. "24h 7d 4w 12m *y"',
    ],
    [
        "schedule sometimes",
        (c) => Object.assign(c.jobs[0], { schedule: "sometimes" }),
        'pullsnap:jobs[0].schedule: got "sometimes"; must be a systemd OnCalendar expression: minutely, hourly, daily, weekly, monthly, quarterly, semiannually, yearly, annually or e.g. "*-*-* 03:00:00"',
    ],
    [
        "an unknown key",
        (c) => Object.assign(c.backupServer, { drivez: ["/dev/sdc"] }),
        'pullsnap:backupServer: unknown key "drivez"; allowed: connection, drives, wipeDrives, removeDrives, volume, scrubSchedule, metricsDir',
    ],
    [
        "two jobs with one name",
        (c) => c.jobs.push({ ...c.jobs[0] }),
        'pullsnap:jobs[1].name: got "main"; must be unique; another job already has this name',
    ],
    [
        "a port out of range",
        (c) => Object.assign(c.jobs[0].pullAddress, { port: 70000 }),
        "pullsnap:jobs[0].pullAddress.port: got 70000; Too big: expected number to be <=65535",
    ],
    [
        "a job name with a space",
        (c) => Object.assign(c.jobs[0], { name: "my job" }),
        'pullsnap:jobs[0].name: got "my job"; must be lowercase letters, digits and -, starting with a letter, at most 32 characters',
    ],
    ...["srv", "/srv/", "/srv//data", "/srv/../etc", "/srv/./data", "/srv/.hidden", "/my data", "/srv/*", "/srv/a\\ b", "/srv/$x"].map(
        (p): [string, Mutation, string] => [
            `the job path ${p}`,
            (c) => Object.assign(c.jobs[0], { paths: [p] }),
            `pullsnap:jobs[0].paths[0]: got ${JSON.stringify(p)}; must be a plain absolute path: letters, digits and ._,=+@- between single slashes, no segment starting with ".", no trailing slash`,
        ],
    ),
    [
        "a maxAge in months",
        (c) => Object.assign(c.jobs[0], { maxAge: "1m" }),
        'pullsnap:jobs[0].maxAge: got "1m"; must be a number followed by s, min, h, d or w, e.g. "36h", "2d" or "90min"',
    ],
    [
        "a missing backup server host key",
        (c) => delete (c.backupServer.connection as Partial<typeof c.backupServer.connection>).hostKey,
        "pullsnap:backupServer.connection.hostKey: got missing; is required: every SSH connection checks a pinned host key; its value is what this prints: ssh-keyscan -t ed25519 -p 22 backup.example.org | cut -d' ' -f2,3",
    ],
    [
        "a missing source host key",
        (c) => {
            delete c.jobs[0].connection.hostKey;
            c.jobs[0].connection.port = 2222;
        },
        "pullsnap:jobs[0].connection.hostKey: got missing; is required: every SSH connection checks a pinned host key; its value is what this prints: ssh-keyscan -t ed25519 -p 2222 main.example.org | cut -d' ' -f2,3",
    ],
    [
        "an ssh-rsa host key",
        (c) => Object.assign(c.jobs[0].connection, { hostKey: RSA_HOST_KEY }),
        `pullsnap:jobs[0].connection.hostKey: got ${JSON.stringify(RSA_HOST_KEY)}; is an ssh-rsa key, which @pulumi/command 1.2.1 can only verify with SHA-1 signatures that OpenSSH 8.8 and later refuse; pin the host's ed25519 or ecdsa key; its value is what this prints: ssh-keyscan -t ed25519 -p 22 main.example.org | cut -d' ' -f2,3`,
    ],
    [
        "a host key with a comment",
        (c) => Object.assign(c.backupServer.connection, { hostKey: `${HOST_KEY} root@backup` }),
        `pullsnap:backupServer.connection.hostKey: got ${JSON.stringify(`${HOST_KEY} root@backup`)}; must be an SSH host key "TYPE BASE64" (ssh-ed25519 or ecdsa-sha2-nistp256/384/521) without a comment; its value is what this prints: ssh-keyscan -t ed25519 -p 22 backup.example.org | cut -d' ' -f2,3`,
    ],
    [
        "a wipe drive outside drives",
        (c) => Object.assign(c.backupServer, { wipeDrives: ["/dev/sdc"] }),
        'pullsnap:backupServer.wipeDrives[0]: got "/dev/sdc"; must also be listed in drives (/dev/sda, /dev/sdb)',
    ],
    [
        "raid1 metadata on one drive",
        (c) => Object.assign(c.backupServer, { drives: ["/dev/sda"], volume: { metadataProfile: "raid1" } }),
        'pullsnap:backupServer.volume.metadataProfile: got "raid1"; needs at least 2 drives, but 1 are configured',
    ],
    [
        "a key that is not a private key",
        (c) => Object.assign(c.jobs[0].connection, { privateKey: "hunter2" }),
        "pullsnap:jobs[0].connection.privateKey: got [secret]; must be an OpenSSH private key (PEM text)",
    ],
    [
        "a from= with a quote",
        (c) => Object.assign(c.jobs[0], { from: '10.0.0.1",command="sh' }),
        'pullsnap:jobs[0].from: got "10.0.0.1\\",command=\\"sh"; must be comma-separated host or address patterns, e.g. "192.0.2.10,10.0.0.0/8"',
    ],
    [
        "a host with shell characters",
        (c) => Object.assign(c.jobs[0].pullAddress, { host: "a;rm -rf /" }),
        'pullsnap:jobs[0].pullAddress.host: got "a;rm -rf /"; must be a hostname or an IP address',
    ],
    [
        "a drive both kept and removed",
        (c) => Object.assign(c.backupServer, { removeDrives: ["/dev/sdb"] }),
        'pullsnap:backupServer.removeDrives[0]: got "/dev/sdb"; is also listed in drives; a drive is either kept or removed',
    ],
    [
        "Matrix alerts without a room",
        (c) => Object.assign(c, { alerts: { format: "matrix", url: "https://matrix.example.org", matrixToken: "syt_abc" } }),
        "pullsnap:alerts.matrixRoom: got missing; is required when alerts.format is matrix",
    ],
    [
        "Slack alerts with a Matrix token",
        (c) => Object.assign(c, { alerts: { format: "slack", url: "https://hooks.slack.com/x", matrixToken: "syt_abc" } }),
        "pullsnap:alerts.matrixToken: got [secret]; is only used when alerts.format is matrix",
    ],
    [
        "an alert format Teams",
        (c) => Object.assign(c, { alerts: { format: "teams", url: "https://example.org/hook" } }),
        'pullsnap:alerts.format: got "teams"; Invalid option: expected one of "slack"|"matrix"',
    ],
    [
        "an alert URL that is not http",
        (c) => Object.assign(c, { alerts: { format: "slack", url: "ftp://example.org/hook" } }),
        "pullsnap:alerts.url: got [secret]; must be an http:// or https:// URL without spaces or quotes",
    ],
    [
        "a scrub schedule that is not a calendar",
        (c) => Object.assign(c.backupServer, { scrubSchedule: "every month" }),
        'pullsnap:backupServer.scrubSchedule: got "every month"; must be a systemd OnCalendar expression: minutely, hourly, daily, weekly, monthly, quarterly, semiannually, yearly, annually or e.g. "*-*-* 03:00:00"',
    ],
    [
        "a missing jobs list",
        (c) => delete (c as Partial<Cfg>).jobs,
        "pullsnap:jobs: got missing; Invalid input: expected array, received undefined",
    ],
];

/** Many problems in one config, each reported. */
export const manyProblems: Mutation = (c) => {
    c.backupServer.drives = ["sda"];
    Object.assign(c.jobs[0], { schedule: "sometimes", retention: "forever" });
    c.jobs.push({ ...c.jobs[0] });
    Object.assign(c, { extra: true });
};

/** A private key that is not one, beside a bad port: the error must not print it. */
export const badPrivateKeyAndPort: Mutation = (c) => Object.assign(c.jobs[0].connection, { privateKey: "-----BEGIN nope", port: "x" });

/** The production example in Pulumi.prod.yaml, with stand-ins for its `secure:` placeholders. */
export function prodExample(): Record<string, unknown> {
    const file = parse(fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.prod.yaml"), "utf8")) as {
        config: Record<string, unknown>;
    };
    // Stand-ins for the `secure:` placeholders, by the key that holds them.
    const fill = (value: unknown, key = ""): unknown => {
        if (Array.isArray(value)) return value.map((v) => fill(v));
        if (value === null || typeof value !== "object") return value;
        if ("secure" in value) return key === "privateKey" ? KEY : "https://hooks.slack.com/services/T/B/x";
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, k)]));
    };
    return Object.fromEntries(Object.entries(file.config).map(([k, v]) => [k.replace(/^pullsnap:/, ""), fill(v)]));
}
