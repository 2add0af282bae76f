// Retention, checked against a small reference model written from the policy's
// definition (not from the runner's code), on hand-picked and on random histories.
// No Btrfs needed: `pullsnap retention-plan` reads snapshot names on stdin.
// Every case runs against the Bash runner and against the Go program that replaces
// it (server/), and the last block checks that the two print the same, byte for byte.
import { promises as fs } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildGoRunner } from "./goRunner";
import { mulberry32, RUNNER, run, tempDir, type Result } from "./harness";

type Unit = "h" | "d" | "w" | "m" | "y";
const UNITS: readonly Unit[] = ["h", "d", "w", "m", "y"];

interface Policy {
    /** "all", "latest", "no", or a count of units. */
    min: "all" | "latest" | "no" | { n: number; unit: Unit };
    preserve: Partial<Record<Unit, number | "*">>;
}

function formatPolicy(p: Policy): { min: string; preserve: string } {
    const min = typeof p.min === "string" ? p.min : `${p.min.n}${p.min.unit}`;
    const parts = UNITS.filter((u) => p.preserve[u] !== undefined).map((u) => `${p.preserve[u]}${u}`);
    return { min, preserve: parts.length ? parts.join(" ") : "no" };
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/** The calendar bucket of a time, in UTC: hour, day, Monday-to-Sunday week, month, year. */
function bucket(t: number, unit: Unit): number {
    const date = new Date(t);
    switch (unit) {
        case "h":
            return Math.floor(t / HOUR);
        case "d":
            return Math.floor(t / DAY);
        case "w":
            // The day number of the week's Monday.
            return Math.floor(t / DAY) - ((date.getUTCDay() + 6) % 7);
        case "m":
            return date.getUTCFullYear() * 12 + date.getUTCMonth();
        case "y":
            return date.getUTCFullYear();
    }
}

/** How many units back from now's bucket t's bucket is. */
function unitsBack(now: number, t: number, unit: Unit): number {
    const back = bucket(now, unit) - bucket(t, unit);
    return unit === "w" ? back / 7 : back;
}

const stamp = (t: number) => new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
const parse = (name: string) => Date.parse(name);

/** The names the policy keeps. */
function modelKeeps(names: readonly string[], now: number, policy: Policy, failed: boolean): Set<string> {
    const unique = [...new Set(names)].sort();
    if (failed) return new Set(unique);
    const keep = new Set<string>();
    const past = unique.filter((n) => parse(n) <= now);
    for (const n of unique) if (parse(n) > now) keep.add(n);
    if (past.length) keep.add(past[past.length - 1]);
    for (const unit of UNITS) {
        const count = policy.preserve[unit];
        if (count === undefined) continue;
        const seen = new Set<number>();
        for (const n of past) {
            const b = bucket(parse(n), unit);
            if (seen.has(b)) continue;
            seen.add(b);
            if (count === "*" || unitsBack(now, parse(n), unit) <= count) keep.add(n);
        }
    }
    if (policy.min === "all") past.forEach((n) => keep.add(n));
    else if (typeof policy.min === "object") {
        const { n: count, unit } = policy.min;
        for (const n of past) if (unitsBack(now, parse(n), unit) <= count) keep.add(n);
    }
    return keep;
}

interface Plan {
    keep: Set<string>;
    delete: Set<string>;
    lines: string[];
}

async function runnerPlan(runner: string, names: readonly string[], now: number, policy: Policy, failed: boolean): Promise<Plan> {
    const { min, preserve } = formatPolicy(policy);
    const args = ["retention-plan", "--now", stamp(now), "--preserve-min", min, "--preserve", preserve];
    if (failed) args.push("--failed");
    const r = await run(runner, args, { input: names.join("\n") + "\n" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const plan: Plan = { keep: new Set(), delete: new Set(), lines: r.stdout.trim().split("\n").filter(Boolean) };
    for (const line of plan.lines) {
        const [action, name, reason] = line.split("\t");
        expect(reason, line).toBeTruthy();
        if (action === "keep") plan.keep.add(name);
        else if (action === "delete") plan.delete.add(name);
        else throw new Error(`unexpected line ${line}`);
    }
    return plan;
}

const sorted = (s: Set<string>) => [...s].sort();

let goDir = "";
let goRunner = "";
beforeAll(async () => {
    goDir = await tempDir("pullsnap-go-");
    goRunner = await buildGoRunner(goDir);
}, 300_000);
afterAll(() => fs.rm(goDir, { recursive: true, force: true }));

/** The programs under test; the Go one exists once beforeAll has built it. */
const RUNNERS = [
    { name: "Bash runner", runner: () => RUNNER },
    { name: "Go program", runner: () => goRunner },
];

describe.each(RUNNERS)("retention-plan, hand-picked ($name)", ({ runner }) => {
    const NOW = Date.parse("2026-11-26T08:00:00Z"); // a Thursday
    const POLICY: Policy = { min: { n: 2, unit: "d" }, preserve: { h: 24, d: 7, w: 4, m: 12, y: "*" } };

    it("keeps the first of each hour, day, week, month and year within reach", async () => {
        const names = [
            "2019-07-01T00:00:00Z", // first of 2019: kept forever (*y)
            "2019-08-01T00:00:00Z", // later in 2019, 87 months back: goes
            "2025-01-15T00:00:00Z", // first of 2025
            "2025-11-03T10:00:00Z", // first of November 2025, 12 months back: kept
            "2025-11-20T10:00:00Z", // second in that month: goes
            "2026-01-05T00:00:00Z", // first of 2026
            "2026-10-01T00:00:00Z", // first of October 2026
            "2026-10-26T09:00:00Z", // first of week of Oct 26, 4 weeks back: kept
            "2026-10-27T09:00:00Z", // same week: goes
            "2026-11-19T06:00:00Z", // first of Nov 19, 7 days back: kept
            "2026-11-19T07:00:00Z", // same day: goes
            "2026-11-24T01:00:00Z", // 2 days back: within preserve_min
            "2026-11-24T01:30:00Z", // 2 days back: within preserve_min
            "2026-11-25T09:00:00Z", // first of its hour, 23 hours back: kept
            "2026-11-25T09:59:00Z", // same hour, but within preserve_min
            "2026-11-26T07:59:59Z", // newest
            "2026-11-26T09:00:00Z", // an hour in the future: kept, and pushes nothing out
        ];
        const plan = await runnerPlan(runner(), names, NOW, POLICY, false);
        expect(sorted(plan.delete)).toEqual([
            "2019-08-01T00:00:00Z",
            "2025-11-20T10:00:00Z",
            "2026-10-27T09:00:00Z",
            "2026-11-19T07:00:00Z",
        ]);
        expect(plan.lines).toContain("keep\t2019-07-01T00:00:00Z\tfirst of its year (2019, 7 years back; preserve *y)");
        expect(plan.lines).toContain("keep\t2025-11-03T10:00:00Z\tfirst of its month (2025-11, 12 months back; preserve 12m)");
        expect(plan.lines).toContain("keep\t2026-10-26T09:00:00Z\tfirst of its week (week of 2026-10-26, 4 weeks back; preserve 4w)");
        expect(plan.lines).toContain("keep\t2026-11-24T01:30:00Z\t2 days back, within preserve_min=2d");
        expect(plan.lines).toContain("keep\t2026-11-26T07:59:59Z\tnewest snapshot");
        expect(plan.lines).toContain("keep\t2026-11-26T09:00:00Z\tdated 1h0m in the future (clock skew?)");
        expect(plan.lines).toContain("delete\t2026-11-19T07:00:00Z\t7d1h old, kept by no rule");
        expect(sorted(plan.keep)).toEqual(sorted(modelKeeps(names, NOW, POLICY, false)));
    });

    it("keeps only the newest with preserve_min=no and preserve=no", async () => {
        const names = ["2026-11-20T00:00:00Z", "2026-11-25T00:00:00Z", "2026-11-26T07:00:00Z"];
        const plan = await runnerPlan(runner(), names, NOW, { min: "no", preserve: {} }, false);
        expect(sorted(plan.keep)).toEqual(["2026-11-26T07:00:00Z"]);
    });

    it("keeps the newest past one even when a future-dated one is newer", async () => {
        const names = ["2026-11-20T00:00:00Z", "2026-11-25T00:00:00Z", "2030-01-01T00:00:00Z"];
        const plan = await runnerPlan(runner(), names, NOW, { min: "latest", preserve: {} }, false);
        expect(sorted(plan.keep)).toEqual(["2026-11-25T00:00:00Z", "2030-01-01T00:00:00Z"]);
    });

    it("deletes nothing after a failed run", async () => {
        const names = ["2001-01-01T00:00:00Z", "2020-05-05T05:05:05Z", "2026-11-26T07:00:00Z"];
        const plan = await runnerPlan(runner(), names, NOW, { min: "no", preserve: {} }, true);
        expect(plan.delete.size).toBe(0);
        for (const line of plan.lines) expect(line).toMatch(/\tthe last run failed: nothing is deleted until a run succeeds$/);
    });

    it("leaves names that are not snapshots alone", async () => {
        const names = ["notes", "2026-02-30T00:00:00Z", "2026-11-26T07:00:00Z.partial", "2026-11-26T07:00:00Z"];
        const plan = await runnerPlan(runner(), names, NOW, { min: "no", preserve: {} }, false);
        expect(plan.delete.size).toBe(0);
        expect(plan.lines).toContain("keep\tnotes\tnot a snapshot name; left alone");
        expect(plan.lines).toContain("keep\t2026-02-30T00:00:00Z\tnot a snapshot name; left alone");
    });

    it("counts weeks from Monday and months by the calendar", async () => {
        // Sunday 2026-11-22 is in last week; Monday 2026-11-23 starts this one.
        const names = ["2026-11-22T23:00:00Z", "2026-11-23T00:00:00Z", "2026-11-23T01:00:00Z", "2026-11-26T07:00:00Z"];
        const plan = await runnerPlan(runner(), names, NOW, { min: "no", preserve: { w: 0 } }, false);
        expect(sorted(plan.keep)).toEqual(["2026-11-23T00:00:00Z", "2026-11-26T07:00:00Z"]);
        const months = await runnerPlan(
            runner(),
            ["2026-10-31T23:59:59Z", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"],
            NOW,
            { min: "no", preserve: { m: 0 } },
            false,
        );
        expect(sorted(months.keep)).toEqual(["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"]);
    });

    it.each([["24h 7x"], ["7d 7d"], ["d"], [""], ["-1d"]])("rejects --preserve %j with exit 2", async (preserve) => {
        const r = await run(runner(), ["retention-plan", "--preserve", preserve], { input: "" });
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`--preserve '${preserve}'`);
    });
});

/** Random choices from a seed, so a failing seed can be replayed. */
function prng(seed: number) {
    const next = mulberry32(seed);
    return {
        next,
        int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
        pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)],
    };
}

function randomCase(seed: number) {
    const r = prng(seed);
    const now = Date.parse("2022-01-01T00:00:00Z") + r.int(0, 8 * 365) * DAY + r.int(0, DAY / 1000 - 1) * 1000;
    // Histories at several paces: every few minutes, hourly, daily, monthly, yearly.
    const names: string[] = [];
    const count = r.int(0, 60);
    for (let i = 0; i < count; i++) {
        const scale = r.pick([10 * 60_000, HOUR, DAY, 7 * DAY, 31 * DAY, 365 * DAY]);
        let t = now - Math.floor(r.next() * r.int(1, 40) * scale);
        if (r.next() < 0.05) t = now + r.int(1, 100) * HOUR; // clock skew
        names.push(stamp(Math.max(t, 0)));
    }
    if (names.length && r.next() < 0.2) names.push(names[0]); // the same name twice
    const unitCount = () => (r.next() < 0.15 ? ("*" as const) : r.int(0, 30));
    const preserve: Policy["preserve"] = {};
    for (const u of UNITS) if (r.next() < 0.6) preserve[u] = unitCount();
    const min: Policy["min"] = r.next() < 0.6 ? { n: r.int(0, 10), unit: r.pick(UNITS) } : r.pick(["all", "latest", "no"] as const);
    return { now, names, policy: { min, preserve }, failed: r.next() < 0.1 };
}

describe.each(RUNNERS)("retention-plan, random histories and clocks ($name)", ({ runner }) => {
    const seeds = Array.from({ length: 150 }, (_, i) => 1000 + i * 7919);

    it.each(seeds)("matches the model and keeps the newest (seed %i)", async (seed) => {
        const { now, names, policy, failed } = randomCase(seed);
        const plan = await runnerPlan(runner(), names, now, policy, failed);
        const unique = new Set(names);
        // Every name is decided exactly once.
        expect(plan.keep.size + plan.delete.size).toBe(unique.size);
        expect(sorted(plan.keep)).toEqual(sorted(modelKeeps(names, now, policy, failed)));

        // The properties the issue asks for, checked on their own.
        const past = [...unique].filter((n) => parse(n) <= now).sort();
        if (past.length) expect(plan.keep.has(past[past.length - 1])).toBe(true);
        for (const n of unique) if (parse(n) > now) expect(plan.keep.has(n)).toBe(true);
        if (failed) expect(plan.delete.size).toBe(0);
        if (policy.min === "all") expect(plan.delete.size).toBe(0);
        // Deleting the future-dated ones' neighbours never depends on them: the plan
        // without them deletes exactly the same names.
        const withoutFuture = [...unique].filter((n) => parse(n) <= now);
        const again = await runnerPlan(runner(), withoutFuture, now, policy, failed);
        expect(sorted(again.delete)).toEqual(sorted(plan.delete));
    });
});

/** Runs one command line on both programs, with the same input and clock. */
async function onBoth(args: readonly string[], input: string, env: NodeJS.ProcessEnv = {}): Promise<{ bash: Result; go: Result }> {
    const opts = { input, env: { ...process.env, PULLSNAP_NOW: "", ...env } };
    const [bash, go] = await Promise.all([run(RUNNER, args, opts), run(goRunner, args, opts)]);
    return { bash, go };
}

describe("the Go program and the Bash runner, byte for byte", () => {
    const NAMES = [
        "notes",
        "2019-07-01T00:00:00Z",
        "2026-11-20T00:00:00Z",
        "2026-11-25T09:00:00Z",
        "2026-11-25T09:00:00Z",
        "2026-11-24T01:30:00Z",
        "2026-11-26T09:00:00Z",
        "",
        " ",
    ].join("\n");
    const AT = ["--now", "2026-11-26T08:00:00Z"];
    interface Case {
        why: string;
        args: string[];
        input?: string;
        env?: NodeJS.ProcessEnv;
    }
    const cases: Case[] = [
        { why: "the defaults", args: AT, input: NAMES + "\n" },
        { why: "after a failed run", args: [...AT, "--failed"], input: NAMES + "\n" },
        { why: "preserve_min=all", args: [...AT, "--preserve-min", "all"], input: NAMES + "\n" },
        { why: "preserve_min=latest, preserve=no", args: [...AT, "--preserve-min", "latest", "--preserve", "no"], input: NAMES + "\n" },
        { why: "preserve_min in hours, weeks forever", args: [...AT, "--preserve-min", "30h", "--preserve", "*w 0d"], input: NAMES + "\n" },
        { why: "counts with leading zeros", args: [...AT, "--preserve-min", "002d", "--preserve", "007d 01y"], input: NAMES + "\n" },
        { why: "the clock as epoch seconds", args: ["--now", "1795680000"], input: NAMES + "\n" },
        { why: "the clock from PULLSNAP_NOW", args: [], input: NAMES + "\n", env: { PULLSNAP_NOW: "2026-11-26T08:00:00Z" } },
        { why: "an empty --now falls back to PULLSNAP_NOW", args: ["--now", ""], input: NAMES + "\n", env: { PULLSNAP_NOW: "1795680000" } },
        { why: "a bad PULLSNAP_NOW", args: [], input: NAMES + "\n", env: { PULLSNAP_NOW: "tomorrow" } },
        { why: "--now wins over PULLSNAP_NOW", args: AT, input: NAMES + "\n", env: { PULLSNAP_NOW: "tomorrow" } },
        {
            why: "weeks that began before the epoch",
            args: ["--now", "1970-01-05T01:01:01Z", "--preserve", "1w 0h"],
            input: "1970-01-01T00:00:00Z\n1970-01-04T23:00:00Z\n1970-01-05T00:00:00Z\n",
        },
        { why: "the last second with a name", args: ["--now", "253402300799"], input: "1970-01-01T00:00:00Z\n9999-12-31T23:59:58Z\n" },
        // Where the Bash runner misbehaves, the Go program does the same (see server/ COMPAT).
        { why: "a clock past the year 9999 (exit 1, silent)", args: ["--now", "253402300800"], input: NAMES + "\n" },
        { why: "a clock past the year 9999, no snapshot to date", args: ["--now", "253402300800"], input: "notes\n" },
        { why: "epoch seconds with a leading 0 are octal", args: ["--now", "0100"], input: "1970-01-01T00:01:04Z\n1970-01-01T00:01:05Z\n" },
        { why: "an invalid octal clock, no snapshot to date", args: ["--now", "08"], input: "notes\n" },
        { why: "--now without a value (exit 1, silent)", args: ["--now"] },
        { why: "--preserve-min without a value", args: ["--failed", "--preserve-min"] },
        { why: "--preserve without a value", args: ["--preserve"] },
        { why: "a last line without a newline is not read", args: AT, input: "2026-11-20T00:00:00Z\n2026-11-25T00:00:00Z" },
        { why: "NUL bytes are dropped", args: AT, input: "2026-11-2\0" + "0T00:00:00Z\nab\0c\n" },
        { why: "CRLF lines are not snapshot names", args: AT, input: "2026-11-20T00:00:00Z\r\n2026-11-25T00:00:00Z\n" },
        { why: "nothing on stdin", args: AT, input: "" },
        { why: "only the first line of --preserve counts", args: [...AT, "--preserve", "1d\n24h"], input: NAMES + "\n" },
        { why: "--preserve split on spaces and tabs", args: [...AT, "--preserve", " \t7d  24h\t"], input: NAMES + "\n" },
        { why: "--preserve with a carriage return", args: [...AT, "--preserve", "7d\r"] },
        { why: "--preserve given twice: the last counts", args: [...AT, "--preserve", "bad", "--preserve", "1y"], input: NAMES + "\n" },
        { why: "a bad --preserve-min before a bad --preserve", args: ["--preserve", "x", "--preserve-min", "y"] },
        { why: "a bad clock before a bad policy", args: ["--now", "x", "--preserve-min", "y"] },
        { why: "a message of two lines", args: ["--preserve-min", "a\nb"] },
        { why: "--help", args: ["--help"] },
        { why: "-h ends the arguments", args: ["-h", "--bogus"] },
        { why: "--now takes the next argument, whatever it is", args: ["--now", "--help"] },
        { why: "an unknown option", args: ["--bogus"] },
        { why: "--now=T", args: ["--now=5"] },
        { why: "--", args: ["--", "--failed"] },
        { why: "a stray word", args: [...AT, "main"] },
    ];

    it.each(cases)("retention-plan: $why", async ({ args, input, env }) => {
        const { bash, go } = await onBoth(["retention-plan", ...args], input ?? "", env);
        expect(go).toEqual(bash);
    });

    it("an invalid octal clock: the same, but for the wording of Bash's own error", async () => {
        const { bash, go } = await onBoth(["retention-plan", "--now", "08"], NAMES + "\n");
        expect(go.code).toBe(1);
        expect(go.stdout).toBe(bash.stdout);
        expect(bash.code).toBe(1);
        expect(bash.stderr).toMatch(/printf: 08: invalid octal number\n$/);
        expect(go.stderr).toBe("pullsnap: error: 08: invalid octal number\n");
    });

    it.each([["--version"], ["version"], ["frobnicate"], ["--bogus", "retention-plan"], ["-v"], ["__complete", "re"], ["retention-plan"]])(
        "pullsnap %s",
        async (...args) => {
            const { bash, go } = await onBoth(args, "");
            expect(go).toEqual(bash);
        },
    );

    const seeds = Array.from({ length: 150 }, (_, i) => 1000 + i * 7919);
    it.each(seeds)("random history (seed %i)", async (seed) => {
        const { now, names, policy, failed } = randomCase(seed);
        const { min, preserve } = formatPolicy(policy);
        const args = ["retention-plan", "--now", stamp(now), "--preserve-min", min, "--preserve", preserve];
        if (failed) args.push("--failed");
        const { bash, go } = await onBoth(args, names.join("\n") + "\n");
        expect(go).toEqual(bash);
        expect(bash.code).toBe(0);
    });
});
