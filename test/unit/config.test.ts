import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../components/config";
import { accepted, badPrivateKeyAndPort, configWith, manyProblems, type Mutation, prodExample, rejected, validConfig } from "./configCases";

function problemsOf(mutate: Mutation): string[] {
    try {
        parseConfig(configWith(mutate));
    } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as ConfigError).problems;
    }
    return [];
}

describe("parseConfig", () => {
    it("fills the seed's defaults", () => {
        const cfg = parseConfig(validConfig());
        expect(cfg.backupServer.volume).toEqual({
            label: "backup",
            mountPoint: "/plus/backup",
            dataProfile: "single",
            metadataProfile: "raid1",
        });
        expect(cfg.backupServer.connection).toMatchObject({ port: 22, user: "root" });
        expect(cfg.jobs[0]).toMatchObject({
            paths: ["/"],
            excludes: [],
            schedule: "daily",
            retention: { minimum: "2d", preserve: "24h 7d 4w 12m *y" },
            maxAge: "36h",
            pullAddress: { host: "192.0.2.10", port: 22 },
        });
    });

    it("uses metadata dup on a single drive", () => {
        const cfg = validConfig();
        cfg.backupServer.drives = ["/dev/vdb"];
        expect(parseConfig(cfg).backupServer.volume.metadataProfile).toBe("dup");
    });

    it.each(accepted)("accepts %s", (_name, mutate) => {
        expect(problemsOf(mutate)).toEqual([]);
    });

    it.each(rejected)("rejects %s", (_name, mutate, message) => {
        expect(problemsOf(mutate)).toEqual([message]);
    });

    it("reports every problem at once", () => {
        const problems = problemsOf(manyProblems);
        expect(problems.map((p) => p.slice(0, p.indexOf(": ")))).toEqual([
            "pullsnap:backupServer.drives[0]",
            "pullsnap:jobs[0].schedule",
            "pullsnap:jobs[0].retention",
            "pullsnap:jobs[1].schedule",
            "pullsnap:jobs[1].retention",
            "pullsnap",
            "pullsnap:jobs[1].name",
        ]);
    });

    it("never prints a private key in an error", () => {
        const problems = problemsOf(badPrivateKeyAndPort);
        expect(problems.join("\n")).not.toContain("BEGIN");
    });

    it("accepts the production example in Pulumi.prod.yaml, its secrets filled in", () => {
        const raw = prodExample();
        expect(Object.keys(raw).sort()).toEqual(["alerts", "backupServer", "jobs"]);
        const cfg = parseConfig(raw);
        expect(cfg.backupServer.volume).toMatchObject({ label: "backup", mountPoint: "/plus/backup", metadataProfile: "raid1" });
        expect(cfg.alerts?.format).toBe("slack");
    });
});
