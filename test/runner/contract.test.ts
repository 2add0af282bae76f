// The Pulumi program's schema (components/config.ts) and the runner's own
// validation must agree: a job value that passes `pulumi preview` must be one
// the runner accepts and reads the same way, or every backup run would fail
// with "invalid config" after a green `pulumi up`. Each value goes through
// parseConfig, then renderJobConfig, then the runner's `check`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { parseConfig } from "../../components/config";
import { renderJobConfig } from "../../components/backupJob";
import { Runner, tempDir } from "./harness";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxx";

let dir: string;
let runner: Runner;
beforeAll(async () => {
    dir = await tempDir("pullsnap-contract-");
    runner = await Runner.create(dir);
});
afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
});

/** The job as `pulumi preview` sees it, or undefined when the schema refuses it. */
function previewed(job: Record<string, unknown>) {
    try {
        return parseConfig({
            backupServer: { connection: { host: "backup.example.org", privateKey: KEY, hostKey: HOST_KEY }, drives: ["/dev/sda"] },
            jobs: [{ name: "main", connection: { host: "main.example.org", privateKey: KEY, hostKey: HOST_KEY }, ...job }],
        }).jobs[0];
    } catch {
        return undefined;
    }
}

const cases: [string, Record<string, unknown>][] = [
    ...["36h", "2d", "1w", "90min", "45s", "1m", "1y", "0h", "36", "1.5h", "999999999w", "1000000000h"].map(
        (maxAge): [string, Record<string, unknown>] => [`maxAge ${maxAge}`, { maxAge }],
    ),
    ...["2d", "1h", "3w", "6m", "1y", "0d", "2x"].map((minimum): [string, Record<string, unknown>] => [
        `retention.minimum ${minimum}`,
        { retention: { minimum } },
    ]),
    ...["24h 7d 4w 12m *y", "7d", "*y", "0h", "7d 24h", "24h 24h", "12m *y"].map((preserve): [string, Record<string, unknown>] => [
        `retention.preserve ${preserve}`,
        { retention: { preserve } },
    ]),
    ...[["/"], ["/srv/data", "/etc"], ["/srv/.hidden"], ["/home/a b"], ["/srv/x=1,y+z@h"]].map(
        (paths): [string, Record<string, unknown>] => [`paths ${paths.join(" ")}`, { paths }],
    ),
    ...[["/var/cache"], ["*.tmp"], ["- x"], ["dir/"]].map((excludes): [string, Record<string, unknown>] => [
        `excludes ${excludes.join(" ")}`,
        { excludes },
    ]),
    ...[
        { host: "10.0.0.10", port: 22 },
        { host: "2001:db8::10", port: 2222 },
        { host: "main.example.org", port: 65535 },
        { host: "-oProxyCommand=x", port: 22 },
    ].map((pullAddress): [string, Record<string, unknown>] => [`pullAddress ${pullAddress.host}:${pullAddress.port}`, { pullAddress }]),
];

describe("the schema and the runner", () => {
    it.each(cases)("agree on %s", async (_name, value) => {
        const job = previewed({ pullAddress: { host: "10.0.0.10" }, ...value });
        if (job === undefined) {
            return; // `pulumi preview` fails: the runner never sees it.
        }
        // The runner checks that the key files exist; point them at real ones.
        const key = path.join(dir, "id_ed25519");
        await fs.writeFile(key, KEY, { mode: 0o600 });
        const text = renderJobConfig(job, "/plus/backup")
            .replace(/^ssh_key=.*$/m, `ssh_key=${key}`)
            .replace(/^known_hosts=.*$/m, `known_hosts=${key}`);
        await fs.writeFile(path.join(runner.configDir, "jobs", "main.conf"), text);
        const r = await runner.run(["check", "main"]);
        expect(r.stderr, text).toBe("");
        expect(r.code).toBe(0);
        // And reads it as written: the runner prints what it understood.
        for (const line of text
            .split("\n")
            .filter((l) => /^(max_age|preserve_min|preserve|path|exclude|source_host|source_port)=/.test(l))) {
            expect(r.stdout).toContain(`${line}\n`);
        }
    });

    it("covers values the schema accepts and values it refuses", () => {
        const accepted = cases.filter(([, v]) => previewed({ pullAddress: { host: "10.0.0.10" }, ...v }) !== undefined);
        expect(accepted.length).toBeGreaterThan(15);
        expect(cases.length - accepted.length).toBeGreaterThan(10);
        // The value that used to pass preview and then fail every run.
        expect(previewed({ pullAddress: { host: "10.0.0.10" }, maxAge: "1m" })).toBeUndefined();
    });
});
