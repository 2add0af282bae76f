// The CI deploys: the GitHub Actions workflow and the GitLab CI example are
// checked by real linters (actionlint with shellcheck; gitlab-ci-local, which
// validates against GitLab's JSON schema and evaluates the rules), then by
// their structure. .ci/deploy runs against a fake `pulumi` that records its
// argv, so the exact pulumi invocations are checked without a stack, and each
// one must be documented in README.md's "CI deploys" section. The `needs:` of
// both files are read as a graph: no job that reaches the stack may start
// before the `test` job, which runs test/run's lint and the unit tests, passed.
import { spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";

const REPO_DIR = path.resolve(__dirname, "..", "..");
const WORKFLOW = path.join(REPO_DIR, ".github/workflows/pullsnap.yml");
const GITLAB_EXAMPLE = path.join(REPO_DIR, ".ci/gitlab-ci.example.yml");
const DEPLOY = path.join(REPO_DIR, ".ci/deploy");
const TEST_RUN = path.join(REPO_DIR, "test/run");
const TOOLS_DIR = path.join(process.env.PULLSNAP_CACHE ?? path.join(os.homedir(), ".cache/pullsnap"), "tools");

// Both served by the proxies this project may use (Go module proxy, npm).
const ACTIONLINT_VERSION = "v1.7.12";
const GITLAB_CI_LOCAL_VERSION = "4.75.1";
const TOOL_TIMEOUT = 300_000;

const SECRET_VARS = ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULLSNAP_SSH_PRIVATE_KEY"];
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAASECRETKEYBODY\n-----END OPENSSH PRIVATE KEY-----";
const PASSPHRASE = "correct-horse-battery-staple";

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) {
    return spawnSync(cmd, args, { encoding: "utf8", cwd: opts.cwd ?? REPO_DIR, env: opts.env ?? process.env, input: opts.input });
}

function ok(result: SpawnSyncReturns<string>, what: string): string {
    if (result.error) throw result.error;
    if (result.status !== 0) throw new Error(`${what} exited ${result.status}:\n${result.stdout}${result.stderr}`);
    return result.stdout;
}

/** Builds a tool once into TOOLS_DIR/<name> through a temporary folder, so an interrupted build leaves nothing behind. */
function cachedTool(name: string, build: (tmp: string) => string): string {
    const final = path.join(TOOLS_DIR, name);
    if (!fs.existsSync(final)) {
        fs.mkdirSync(TOOLS_DIR, { recursive: true });
        const tmp = fs.mkdtempSync(path.join(TOOLS_DIR, `.${name}-`));
        try {
            fs.renameSync(build(tmp), final);
        } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    }
    return final;
}

/** actionlint from the Go module proxy; toolchain/install.sh does not need it, only this test. */
function actionlint(): string {
    return cachedTool(`actionlint-${ACTIONLINT_VERSION}`, (tmp) => {
        ok(
            run("go", ["install", `github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}`], {
                cwd: tmp,
                env: { ...process.env, GOBIN: tmp },
            }),
            "go install actionlint (is Go on PATH? source toolchain/env.sh)",
        );
        return path.join(tmp, "actionlint");
    });
}

/** gitlab-ci-local from npm: one self-contained file that validates against GitLab's schema and evaluates rules. */
function gitlabCiLocal(): string {
    const dir = cachedTool(`gitlab-ci-local-${GITLAB_CI_LOCAL_VERSION}`, (tmp) => {
        ok(
            run("npm", [
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
                tmp,
                `gitlab-ci-local@${GITLAB_CI_LOCAL_VERSION}`,
            ]),
            "npm install gitlab-ci-local",
        );
        return tmp;
    });
    return path.join(dir, "node_modules/gitlab-ci-local/dist/index.js");
}

const shellcheck = () => ok(run("bash", ["-c", "command -v shellcheck"]), "shellcheck is not on PATH").trim();

const workflow = parse(fs.readFileSync(WORKFLOW, "utf8"));
const gitlab = parse(fs.readFileSync(GITLAB_EXAMPLE, "utf8"));

interface Step {
    name?: string;
    uses?: string;
    run?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
    if?: string;
    "continue-on-error"?: boolean | string;
}
const jobSteps = (job: string): Step[] => workflow.jobs[job].steps;
const allSteps = (): Step[] => Object.keys(workflow.jobs).flatMap(jobSteps);

/** Every string in a parsed YAML tree, with its path. */
function strings(node: unknown, at = ""): [string, string][] {
    if (typeof node === "string") return [[at, node]];
    if (Array.isArray(node)) return node.flatMap((v, i) => strings(v, `${at}[${i}]`));
    if (node && typeof node === "object") return Object.entries(node).flatMap(([k, v]) => strings(v, at ? `${at}.${k}` : k));
    return [];
}

const DEPLOY_CALL = /^source toolchain\/env\.sh && \.ci\/deploy (preview|up|drift)$/;

// --- Deploys wait for the tests -----------------------------------------------

/** The unit tests; test/run runs every project, which needs root and QEMU. */
const UNIT_TESTS = "npx vitest run --project unit";

/** What test/run runs between its lint banner and vitest: the lint, then the Go tests. One command a line. */
function testRunCommands(): string[] {
    const lines = fs.readFileSync(TEST_RUN, "utf8").split("\n");
    const from = lines.findIndex((l) => l.startsWith('step "lint'));
    const to = lines.findIndex((l) => l.startsWith('step "vitest'));
    expect(from, 'test/run has no step "lint …"').toBeGreaterThanOrEqual(0);
    expect(to, 'test/run has no step "vitest …" after it').toBeGreaterThan(from);
    return commands(lines.slice(from + 1, to)).filter((l) => !l.startsWith("step "));
}

/** The shell commands of some scripts, one a line, without comments and without `source toolchain/env.sh`, which only sets PATH. */
function commands(scripts: string[]): string[] {
    return scripts
        .flatMap((s) => s.split("\n"))
        .map((l) => l.trim().replace(/^source toolchain\/env\.sh && /, ""))
        .filter((l) => l && !l.startsWith("#") && l !== "source toolchain/env.sh");
}

/** A job reaches the stack when it runs .ci/deploy or pulumi, or is handed a secret. */
const reachesStack = (scripts: string[], job: unknown) =>
    commands(scripts).some((c) => /\.ci\/deploy\b|\bpulumi\s/.test(c)) || JSON.stringify(job).includes("secrets.");

/** Every job that `job` waits for, directly or through others. */
function upstream(job: string, direct: (job: string) => string[]): Set<string> {
    const seen = new Set<string>();
    const todo = direct(job);
    for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
        if (!seen.has(next)) {
            seen.add(next);
            todo.push(...direct(next));
        }
    }
    return seen;
}

interface GitHubJob {
    needs?: string | string[];
    if?: string;
    "continue-on-error"?: boolean | string;
    steps: Step[];
}
const githubRuns = (job: GitHubJob) => job.steps.flatMap((s) => (s.run ? [s.run] : []));

/** A status function in `if:` that runs a job although a job it needs failed, or was cancelled. */
const RUNS_ANYWAY = /\balways\(\)|(?<!!\s*)\b(failure|cancelled)\(\)/;

/**
 * How a GitHub job that reaches the stack could run without job `test` having passed, one problem a line; none when no job can.
 * A job runs only when every job it needs succeeded, unless its `if:` uses a status function: `!failure()` still waits
 * for a failed need, but then runs after a skipped one, so `test` itself must never be skipped.
 */
function githubBypasses(wf: { jobs: Record<string, GitHubJob> }): string[] {
    const { jobs } = wf;
    const test = jobs.test;
    if (!test) return ["there is no job test"];
    const problems: string[] = [];
    if (test.if !== undefined) problems.push(`test has if: ${test.if}; it must run on every event`);
    if (test.needs !== undefined) problems.push(`test needs ${JSON.stringify(test.needs)}; it must start first`);
    const needs = (job: string) => [jobs[job]?.needs ?? []].flat();
    for (const [name, job] of Object.entries(jobs)) {
        if (!reachesStack(githubRuns(job), job)) continue;
        const above = upstream(name, needs);
        if (!above.has("test")) problems.push(`${name} can start without test: needs ${JSON.stringify(job.needs ?? [])}`);
        for (const on of [name, ...above]) {
            const cond = jobs[on]?.if ?? "";
            if (RUNS_ANYWAY.test(cond)) problems.push(`${name} runs when test fails: ${on} has if: ${cond}`);
            if (jobs[on]?.["continue-on-error"] !== undefined) problems.push(`${name} runs when test fails: ${on} has continue-on-error`);
        }
    }
    return problems;
}

type GitLabNeed = string | { job: string; optional?: boolean };
interface GitLabJob {
    stage?: string;
    needs?: GitLabNeed[];
    rules?: unknown[];
    only?: unknown;
    except?: unknown;
    when?: string;
    allow_failure?: unknown;
    before_script?: string[];
    script?: string[];
    after_script?: string[];
}
const gitlabRuns = (job: GitLabJob) => [...(job.before_script ?? []), ...(job.script ?? []), ...(job.after_script ?? [])];

/** Top-level keys of a .gitlab-ci.yml that are not jobs. */
const GITLAB_KEYWORDS = new Set([
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
]);

const isHash = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Merges `over` into `base` as GitLab's `extends` does: hashes deeply, anything else replaced. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
    const out = { ...base };
    for (const [k, v] of Object.entries(over)) {
        const was = out[k];
        out[k] = isHash(was) && isHash(v) ? merge(was, v) : v;
    }
    return out;
}

/** A GitLab job with what it `extends` merged in. */
function gitlabJob(ci: Record<string, unknown>, name: string): GitLabJob {
    const own = { ...(ci[name] as Record<string, unknown>) };
    const parents = [own.extends ?? []].flat() as string[];
    delete own.extends;
    return merge(
        parents.reduce<Record<string, unknown>>((acc, parent) => merge(acc, gitlabJob(ci, parent) as Record<string, unknown>), {}),
        own,
    ) as GitLabJob;
}

/**
 * How a GitLab job that reaches the stack could run without job `test` having passed, one problem a line; none when no job can.
 * A job with `needs:` waits for those jobs, one without for every job of the earlier stages; `when: always` runs it anyway.
 */
function gitlabBypasses(ci: Record<string, unknown>): string[] {
    const names = Object.keys(ci).filter((k) => !k.startsWith(".") && !GITLAB_KEYWORDS.has(k));
    const jobs = Object.fromEntries(names.map((n) => [n, gitlabJob(ci, n)]));
    const test = jobs.test;
    if (!test) return ["there is no job test"];
    const problems: string[] = [];
    // A need on a job that is not in the pipeline is an error, or dropped when optional: test must always be there.
    if (test.rules !== undefined || test.only !== undefined || test.except !== undefined)
        problems.push("test has rules; it must be in every pipeline");
    // when: manual implies allow_failure: true, so the stages after it go on.
    if ((test.when ?? "on_success") !== "on_success") problems.push(`test has when: ${test.when}`);
    if ((test.allow_failure ?? false) !== false) problems.push("test has allow_failure; the jobs after it would run when it fails");
    const stages = (ci.stages as string[] | undefined) ?? ["build", "test", "deploy"];
    const stage = (job: string) => stages.indexOf(jobs[job]?.stage ?? "test");
    const needs = (job: string) =>
        jobs[job]?.needs?.map((n) => (typeof n === "string" ? n : n.job)) ?? names.filter((other) => stage(other) < stage(job));
    for (const [name, job] of Object.entries(jobs)) {
        if (!reachesStack(gitlabRuns(job), job)) continue;
        const above = upstream(name, needs);
        if (!above.has("test")) problems.push(`${name} can start without test: needs ${JSON.stringify(job.needs ?? "the earlier stages")}`);
        for (const on of [name, ...above]) {
            const always = jobs[on]?.when === "always" || JSON.stringify(jobs[on]?.rules ?? []).includes('"when":"always"');
            if (always) problems.push(`${name} runs when test fails: ${on} has when: always`);
        }
    }
    return problems;
}

describe("the GitHub Actions workflow", () => {
    it(
        "passes actionlint, shellcheck included",
        () => {
            const result = run(actionlint(), ["-no-color", "-shellcheck", shellcheck(), path.relative(REPO_DIR, WORKFLOW)]);
            expect(result.stdout + result.stderr).toBe("");
            expect(result.status).toBe(0);
        },
        TOOL_TIMEOUT,
    );

    it(
        "fails actionlint when a run step has a shell bug (the linter really looks)",
        () => {
            const project = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-actionlint-"));
            try {
                ok(run("git", ["init", "-q"], { cwd: project }), "git init");
                fs.mkdirSync(path.join(project, ".github/workflows"), { recursive: true });
                const broken = fs.readFileSync(WORKFLOW, "utf8").replace(".ci/deploy up", ".ci/deploy $PULUMI_STACK");
                fs.writeFileSync(path.join(project, ".github/workflows/broken.yml"), broken);
                const result = run(actionlint(), ["-no-color", "-shellcheck", shellcheck()], { cwd: project });
                expect(result.status).toBe(1);
                expect(result.stdout).toContain("SC2086");
            } finally {
                fs.rmSync(project, { recursive: true, force: true });
            }
        },
        TOOL_TIMEOUT,
    );

    it("runs on pull requests, pushes to main, a daily schedule and on demand", () => {
        expect(Object.keys(workflow.on).sort()).toEqual(["pull_request", "push", "schedule", "workflow_dispatch"]);
        expect(workflow.on.push).toEqual({ branches: ["main"] });
        expect(workflow.on.schedule).toEqual([{ cron: expect.stringMatching(/^\d+ \d+ \* \* \*$/) }]);
    });

    it("asks for read access to the code and nothing else", () => {
        expect(workflow.permissions).toEqual({ contents: "read" });
        for (const job of Object.values<Record<string, unknown>>(workflow.jobs)) expect(job.permissions).toBeUndefined();
    });

    it.each([
        ["preview", "pull_request", "preview"],
        ["up", "push", "up"],
        ["drift", "schedule", "drift"],
    ])("job %s runs on %s and ends in .ci/deploy %s", (job, event, subcommand) => {
        expect(workflow.jobs[job].if).toContain(`github.event_name == '${event}'`);
        expect(jobSteps(job).at(-1)?.run).toBe(`source toolchain/env.sh && .ci/deploy ${subcommand}`);
    });

    it("sets up every job the same way: Go 1.26, Node 24, the cached toolchain", () => {
        const setup = (job: string) => jobSteps(job).slice(0, -1);
        expect(setup("up")).toEqual(setup("preview"));
        expect(setup("drift")).toEqual(setup("preview"));
        expect(jobSteps("test").slice(0, setup("preview").length)).toEqual(setup("preview"));
        // The self-hosted runner keeps its caches on its own disk; test/run installs the toolchain.
        expect(jobSteps("e2e").slice(0, -1)).toEqual(setup("preview").filter((s) => !s.uses?.startsWith("actions/cache@") && !s.run));
        const uses = (prefix: string) => setup("preview").find((s) => s.uses?.startsWith(prefix));
        expect(uses("actions/setup-go@")?.with).toMatchObject({ "go-version": "1.26" });
        expect(uses("actions/setup-node@")?.with).toMatchObject({ "node-version": 24 });
        const cache = uses("actions/cache@")?.with ?? {};
        expect(String(cache.path).trim().split("\n")).toEqual(expect.arrayContaining(["~/.cache/pullsnap/tools", "~/.cache/go-build"]));
        expect(cache.key).toContain("hashFiles('toolchain/go.sum', 'toolchain/cmd/**')");
        const toolchain = setup("preview").find((s) => s.run);
        expect(toolchain?.run).toContain('sudo env "PATH=$PATH" "HOME=$HOME" bash toolchain/install.sh');
    });

    it("never runs two deploys of the stack at once", () => {
        const { up, drift, preview } = workflow.jobs;
        expect(up.concurrency).toEqual({ group: "pullsnap-stack-${{ vars.PULUMI_STACK || 'prod' }}", "cancel-in-progress": false });
        expect(drift.concurrency).toEqual(up.concurrency);
        expect(preview.concurrency["cancel-in-progress"]).toBe(true);
        expect(workflow.env.PULUMI_STACK).toBe("${{ vars.PULUMI_STACK || 'prod' }}");
    });

    it("runs only .ci/deploy and the toolchain in the deploy jobs", () => {
        const runs = ["preview", "up", "drift"].flatMap(jobSteps).flatMap((s) => (s.run ? [s.run] : []));
        expect(runs.length).toBeGreaterThan(0);
        for (const script of runs) {
            const calls = script.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
            expect(DEPLOY_CALL.test(script) || calls.some((l) => l.includes("toolchain/install.sh")), script).toBe(true);
        }
        // An expression in a script is pasted in before the shell parses it: an injection, and a secret in argv.
        for (const step of allSteps()) expect(step.run ?? "").not.toContain("${{");
    });

    it("runs test/run's lint and Go tests in job test, then the unit tests", () => {
        const expected = testRunCommands();
        expect(expected.join("\n")).toMatch(/tsc --noEmit[^]*eslint[^]*prettier --check[^]*shellcheck[^]*go vet[^]*gofmt[^]*go test/);
        // test/run hands its arguments to vitest, so this job runs what `test/run --project unit` runs.
        expect(fs.readFileSync(TEST_RUN, "utf8")).toMatch(/^npx vitest run .*"\$@"/m);
        const own = jobSteps("test").slice(jobSteps("preview").length - 1);
        expect(commands(own.map((s) => s.run ?? ""))).toEqual([...expected, UNIT_TESTS]);
        for (const step of own) {
            expect(step.if, step.name).toBeUndefined();
            expect(step["continue-on-error"], step.name).toBeUndefined();
        }
    });

    it("starts no job that reaches the stack before job test passed", () => {
        const reaching = Object.entries<GitHubJob>(workflow.jobs)
            .filter(([, job]) => reachesStack(githubRuns(job), job))
            .map(([name]) => name);
        expect(reaching).toEqual(["preview", "up", "drift"]);
        expect(githubBypasses(workflow)).toEqual([]);
    });

    it.each<[string, (jobs: Record<string, GitHubJob>) => void, string[]]>([
        [
            "no job needs another, as before the test job",
            (jobs) => Object.values(jobs).forEach((job) => delete job.needs),
            ["preview can start without test: needs []", "up can start without test: needs []", "drift can start without test: needs []"],
        ],
        ["drift needs nothing", (jobs) => delete jobs.drift.needs, ["drift can start without test: needs []"]],
        ["up needs only e2e", (jobs) => (jobs.up.needs = ["e2e"]), ['up can start without test: needs ["e2e"]']],
        [
            "up needs test through a job that runs anyway",
            (jobs) => {
                jobs.gate = { needs: "test", if: "always()", steps: [] };
                jobs.up.needs = ["gate", "e2e"];
            },
            ["up runs when test fails: gate has if: always()"],
        ],
        [
            "up runs after a failure",
            (jobs) => (jobs.up.if = "failure() && github.event_name == 'push'"),
            ["up runs when test fails: up has if: failure() && github.event_name == 'push'"],
        ],
        [
            "test is skipped on pushes, which up's !failure() lets through",
            (jobs) => (jobs.test.if = "github.event_name == 'pull_request'"),
            ["test has if: github.event_name == 'pull_request'; it must run on every event"],
        ],
        [
            "test may fail",
            (jobs) => (jobs.test["continue-on-error"] = true),
            [
                "preview runs when test fails: test has continue-on-error",
                "up runs when test fails: test has continue-on-error",
                "drift runs when test fails: test has continue-on-error",
            ],
        ],
    ])("catches a workflow where %s", (_what, edit, problems) => {
        const copy = structuredClone(workflow);
        edit(copy.jobs);
        expect(githubBypasses(copy)).toEqual(problems);
    });

    it("runs the whole test/run on a self-hosted runner only when PULLSNAP_E2E_RUNNER names one, and up waits for it", () => {
        const { e2e, up } = workflow.jobs;
        expect(e2e.if).toContain("vars.PULLSNAP_E2E_RUNNER != ''");
        // A self-hosted runner runs the code as root: never a fork's, never on a schedule.
        expect(e2e.if).toContain("github.event.pull_request.head.repo.full_name == github.repository");
        expect(e2e.if).not.toMatch(/schedule|workflow_dispatch/);
        expect(e2e["runs-on"]).toEqual(["self-hosted", "${{ vars.PULLSNAP_E2E_RUNNER }}"]);
        expect(commands([e2e.steps.at(-1).run])).toEqual([
            'if ((EUID == 0)); then .ci/run; else sudo env "PATH=$PATH" "HOME=$HOME" .ci/run; fi',
        ]);
        expect(fs.readFileSync(path.join(REPO_DIR, ".ci/run"), "utf8")).toMatch(/^exec test\/run$/m);
        expect(up.needs).toEqual(["test", "e2e"]);
        // A skipped e2e (no runner) must not skip up; a failed one must stop it.
        expect(up.if).toMatch(/^\$\{\{ !failure\(\) && !cancelled\(\) && /);
    });

    it("hands secrets only to .ci/deploy, as environment variables, and never prints them", () => {
        const uses = strings(workflow).filter(([, v]) => v.includes("secrets."));
        for (const [at, value] of uses) {
            expect(at).toMatch(/^jobs\.\w+\.steps\[\d+\]\.env\.\w+$/);
            const name = at.split(".").at(-1) as string;
            expect(SECRET_VARS).toContain(name);
            expect(value).toBe(`\${{ secrets.${name} }}`);
        }
        for (const step of allSteps()) {
            if (step.env && Object.values(step.env).some((v) => v.includes("secrets."))) expect(step.run).toMatch(DEPLOY_CALL);
            for (const name of SECRET_VARS) expect(step.run ?? "").not.toContain(name);
        }
        expect(uses).toHaveLength(SECRET_VARS.length * 3);
        expect(workflow.env).not.toHaveProperty("PULUMI_CONFIG_PASSPHRASE");
    });
});

describe("the GitLab CI example", () => {
    let project: string;
    afterAll(() => fs.rmSync(project, { recursive: true, force: true }));

    beforeAll(() => {
        project = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-gitlab-"));
        // gitlab-ci-local reads a git checkout whose default branch is main.
        fs.copyFileSync(GITLAB_EXAMPLE, path.join(project, ".gitlab-ci.yml"));
        fs.mkdirSync(path.join(project, "toolchain"));
        fs.copyFileSync(path.join(REPO_DIR, "toolchain/go.sum"), path.join(project, "toolchain/go.sum"));
        const git = (...args: string[]) => ok(run("git", args, { cwd: project }), `git ${args.join(" ")}`);
        git("init", "-q", "-b", "main");
        git("remote", "add", "origin", "https://gitlab.example.org/ops/pullsnap.git");
        git("add", "-A");
        git("-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", "ci");
        git("update-ref", "refs/remotes/origin/main", "HEAD");
        git("symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main");
    }, TOOL_TIMEOUT);

    /** The jobs a pipeline would run, after schema validation and rule evaluation. */
    function pipeline(variables: Record<string, string>): string[] {
        const args = ["--list-csv", "--ignore-predefined-vars", Object.keys(variables).join(",")];
        for (const [k, v] of Object.entries(variables)) args.push("--variable", `${k}=${v}`);
        const out = ok(run(process.execPath, [gitlabCiLocal(), ...args], { cwd: project }), "gitlab-ci-local");
        return out
            .trim()
            .split("\n")
            .slice(1)
            .map((line) => line.split(";")[0]);
    }

    it.each([
        ["a merge request", { CI_PIPELINE_SOURCE: "merge_request_event" }, ["test", "preview"]],
        ["the default branch", { CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "main" }, ["test", "up"]],
        ["a schedule", { CI_PIPELINE_SOURCE: "schedule" }, ["test", "drift"]],
        // gitlab-ci-local does not apply workflow:rules, which GitLab turns into no pipeline at all (checked below).
        ["another branch", { CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "feature" }, ["test"]],
        [
            "a merge request, with an e2e runner",
            { CI_PIPELINE_SOURCE: "merge_request_event", PULLSNAP_E2E_RUNNER: "pullsnap-e2e" },
            ["test", "e2e", "preview"],
        ],
        [
            "the default branch, with an e2e runner",
            { CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "main", PULLSNAP_E2E_RUNNER: "pullsnap-e2e" },
            ["test", "e2e", "up"],
        ],
        ["a schedule, with an e2e runner", { CI_PIPELINE_SOURCE: "schedule", PULLSNAP_E2E_RUNNER: "pullsnap-e2e" }, ["test", "drift"]],
    ])(
        "passes GitLab's schema and runs, for %s: %j",
        (_what, variables, jobs) => {
            expect(pipeline(variables)).toEqual(jobs);
        },
        TOOL_TIMEOUT,
    );

    it("has pipelines for merge requests, schedules and the default branch only", () => {
        expect(gitlab.workflow.rules).toEqual([
            { if: '$CI_PIPELINE_SOURCE == "merge_request_event"' },
            { if: '$CI_PIPELINE_SOURCE == "schedule"' },
            { if: '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "push"' },
        ]);
    });

    it("is only an example: the repository has no .gitlab-ci.yml", () => {
        expect(fs.existsSync(path.join(REPO_DIR, ".gitlab-ci.yml"))).toBe(false);
    });

    it.each([
        ["preview", "preview"],
        ["up", "up"],
        ["drift", "drift"],
    ])("job %s runs .ci/deploy %s after toolchain/install.sh", (job, subcommand) => {
        expect(gitlab[job].extends).toBe(".pullsnap");
        expect(gitlab[job].script).toEqual([`source toolchain/env.sh && .ci/deploy ${subcommand}`]);
        expect(gitlab[".pullsnap"].before_script.at(-1)).toBe("bash toolchain/install.sh");
    });

    it("runs test/run's lint and Go tests in job test, then the unit tests", () => {
        const test = gitlabJob(gitlab, "test");
        expect(test.before_script).toEqual(gitlab[".pullsnap"].before_script);
        expect(commands(test.script ?? [])).toEqual([...testRunCommands(), UNIT_TESTS]);
    });

    it("starts no job that reaches the stack before job test passed", () => {
        const jobs = ["test", "e2e", "preview", "up", "drift"];
        expect(Object.keys(gitlab).filter((k) => !k.startsWith(".") && !GITLAB_KEYWORDS.has(k))).toEqual(jobs);
        const reaching = jobs.filter((name) => reachesStack(gitlabRuns(gitlabJob(gitlab, name)), gitlabJob(gitlab, name)));
        expect(reaching).toEqual(["preview", "up", "drift"]);
        expect(gitlabBypasses(gitlab)).toEqual([]);
    });

    it.each<[string, (ci: Record<string, GitLabJob>) => void, string[]]>([
        [
            "no job needs another and all share a stage, as before the test job",
            (ci) => ["preview", "up", "drift"].forEach((job) => Object.assign(ci[job], { needs: undefined, stage: "test" })),
            [
                'preview can start without test: needs "the earlier stages"',
                'up can start without test: needs "the earlier stages"',
                'drift can start without test: needs "the earlier stages"',
            ],
        ],
        ["up needs nothing", (ci) => (ci.up.needs = []), ["up can start without test: needs []"]],
        ["drift needs only e2e", (ci) => (ci.drift.needs = ["e2e"]), ['drift can start without test: needs ["e2e"]']],
        ["up runs whatever happened before", (ci) => (ci.up.when = "always"), ["up runs when test fails: up has when: always"]],
        [
            "test is only in merge request pipelines",
            (ci) => (ci.test.rules = [{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }]),
            ["test has rules; it must be in every pipeline"],
        ],
        ["test may fail", (ci) => (ci.test.allow_failure = true), ["test has allow_failure; the jobs after it would run when it fails"]],
        ["test waits for a click", (ci) => (ci.test.when = "manual"), ["test has when: manual"]],
    ])("catches a pipeline where %s", (_what, edit, problems) => {
        const copy = structuredClone(gitlab);
        edit(copy);
        expect(gitlabBypasses(copy)).toEqual(problems);
    });

    it("waits for test through the stages too, when a job has no needs", () => {
        const copy = structuredClone(gitlab);
        delete copy.up.needs;
        expect(gitlabBypasses(copy)).toEqual([]);
    });

    it("runs the whole test/run on the runner PULLSNAP_E2E_RUNNER tags, and up waits for it when it runs", () => {
        expect(gitlab.e2e.tags).toEqual(["$PULLSNAP_E2E_RUNNER"]);
        expect(gitlab.e2e.rules).toEqual([{ if: '$PULLSNAP_E2E_RUNNER && $CI_PIPELINE_SOURCE != "schedule"' }]);
        // No image and no `.pullsnap`: a shell executor, with loop devices and QEMU.
        expect(gitlab.e2e.extends).toBeUndefined();
        expect(gitlab.e2e.script).toEqual(['if ((EUID == 0)); then .ci/run; else sudo env "PATH=$PATH" "HOME=$HOME" .ci/run; fi']);
        expect(gitlab.up.needs).toEqual(["test", { job: "e2e", optional: true }]);
    });

    it("never runs two deploys of the stack at once", () => {
        expect(gitlab.up.resource_group).toBe("pullsnap-$PULUMI_STACK");
        expect(gitlab.drift.resource_group).toBe(gitlab.up.resource_group);
    });

    it("keeps the preview and the drift report as artifacts", () => {
        expect(gitlab.preview.artifacts).toMatchObject({ when: "always", paths: [gitlab.preview.variables.PULLSNAP_SUMMARY] });
        expect(gitlab.drift.artifacts).toMatchObject({ when: "always", paths: [gitlab.drift.variables.PULLSNAP_SUMMARY] });
    });

    it("runs only .ci/deploy, the toolchain and its npm bootstrap, and leaves secrets to .ci/deploy", () => {
        const lines = [...gitlab[".pullsnap"].before_script, ...["preview", "up", "drift"].flatMap((j) => gitlab[j].script)];
        for (const line of lines as string[]) {
            expect(
                DEPLOY_CALL.test(line) || line === "bash toolchain/install.sh" || line.startsWith("apt-get update -qq && apt-get install"),
                line,
            ).toBe(true);
            for (const name of SECRET_VARS) expect(line).not.toContain(name);
        }
        // Secrets are CI/CD variables set in GitLab's settings, never in the file.
        for (const [, value] of strings(gitlab)) for (const name of SECRET_VARS) expect(value).not.toContain(name);
        expect(JSON.stringify(gitlab)).not.toMatch(/PULUMI_BACKEND_URL|PASSPHRASE|PRIVATE_KEY/);
    });

    it("has scripts shellcheck accepts", () => {
        for (const job of ["test", "e2e", "preview", "up", "drift"]) {
            const { before_script = [], script = [] } = gitlabJob(gitlab, job);
            const text = ["#!/bin/bash", ...before_script, ...script].join("\n");
            ok(run(shellcheck(), ["-x", "-s", "bash", "-"], { input: text }), `shellcheck of job ${job}`);
        }
    });
});

// --- .ci/deploy against a fake pulumi -----------------------------------------

const FAKE_PULUMI = `#!/bin/bash
# Records argv (fields split by \\x1f, one call a line) and stdin of config set.
printf '%s\\x1f' "$@" >>"$FAKE_DIR/argv"
printf '\\n' >>"$FAKE_DIR/argv"
case "$1 $2" in
"config set") cat >>"$FAKE_DIR/stdin" ;;
"config get")
	[[ $FAKE_JOBS == missing ]] && { echo "error: configuration key 'jobs' not found" >&2; exit 255; }
	printf '%s\\n' "$FAKE_JOBS"
	;;
"preview "* | "up "*)
	printf '%s\\n' "$FAKE_OUTPUT"
	exit "\${FAKE_EXIT:-0}"
	;;
esac
`;

interface Deploy {
    status: number | null;
    stdout: string;
    stderr: string;
    /** Every pulumi call, as argv. */
    calls: string[][];
    /** What the config set calls read on stdin, concatenated. */
    stdin: string;
    summary: string;
}

describe(".ci/deploy", () => {
    let fake: string;
    beforeAll(() => {
        fake = fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-fake-pulumi-"));
        fs.writeFileSync(path.join(fake, "pulumi"), FAKE_PULUMI, { mode: 0o755 });
    });
    afterAll(() => fs.rmSync(fake, { recursive: true, force: true }));

    const PREVIEW_OUTPUT = [
        "Previewing update (prod):",
        "  ~ command:remote:Command backup-runner update [diff: ~create]",
        "",
        "Resources:",
        "    ~ 1 to update",
        "    + 2 to create",
        "    9 unchanged",
    ].join("\n");

    function deploy(args: string[], env: Record<string, string | undefined> = {}): Deploy {
        const dir = fs.mkdtempSync(path.join(fake, "call-"));
        const summary = path.join(dir, "summary.md");
        const full: Record<string, string | undefined> = {
            // Only what CI would set: no GITHUB_STEP_SUMMARY or stack from the machine running the tests.
            PATH: `${fake}:${process.env.PATH}`,
            HOME: os.homedir(),
            FAKE_DIR: dir,
            FAKE_JOBS: JSON.stringify({ value: "[...]", objectValue: [{ name: "main" }, { name: "web" }], secret: true }),
            FAKE_OUTPUT: PREVIEW_OUTPUT,
            PULUMI_BACKEND_URL: "s3://pullsnap-state",
            PULUMI_CONFIG_PASSPHRASE: PASSPHRASE,
            PULLSNAP_SSH_PRIVATE_KEY: KEY,
            PULLSNAP_SUMMARY: summary,
            ...env,
        };
        const result = spawnSync(DEPLOY, args, {
            encoding: "utf8",
            cwd: os.tmpdir(),
            env: Object.fromEntries(Object.entries(full).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
        });
        if (result.error) throw result.error;
        const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), "utf8") : "");
        const calls = read("argv")
            .split("\n")
            .filter(Boolean)
            .map((line) => line.split("\x1f").slice(0, -1));
        return {
            status: result.status,
            stdout: result.stdout,
            stderr: result.stderr,
            calls,
            stdin: read("stdin"),
            summary: read("summary.md"),
        };
    }

    const stackFlags = (stack = "prod") => ["--stack", stack, "--non-interactive", "--color", "never"];
    const keyCalls = (stack = "prod") => [
        ["config", "set", "--secret", "--path", "pullsnap:backupServer.connection.privateKey", ...stackFlags(stack)],
        ["config", "get", "--path", "pullsnap:jobs", "--json", ...stackFlags(stack)],
        ["config", "set", "--secret", "--path", "pullsnap:jobs[0].connection.privateKey", ...stackFlags(stack)],
        ["config", "set", "--secret", "--path", "pullsnap:jobs[1].connection.privateKey", ...stackFlags(stack)],
    ];

    it.each([
        [["bogus"], 'unknown subcommand "bogus"'],
        [[], "expected one subcommand, got 0"],
        [["preview", "up"], "expected one subcommand, got 2"],
    ])("refuses %j with exit 2 and the usage, before calling pulumi", (args, message) => {
        const r = deploy(args);
        expect(r.status).toBe(2);
        expect(r.stderr).toContain(`deploy: ${message}`);
        expect(r.stderr).toContain("usage: .ci/deploy preview|up|drift");
        expect(r.calls).toEqual([]);
    });

    it("prints the usage on --help", () => {
        const r = deploy(["--help"]);
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(/^usage: \.ci\/deploy preview\|up\|drift\n/);
        for (const name of SECRET_VARS) expect(r.stdout).toContain(name);
    });

    it.each(SECRET_VARS)("names %s when it is missing, before calling pulumi", (name) => {
        for (const value of [undefined, ""]) {
            const r = deploy(["preview"], { [name]: value });
            expect(r.status).toBe(2);
            expect(r.stderr).toBe(`deploy: ${name} is not set; in CI it comes from a secret (see README, "CI deploys")\n`);
            expect(r.calls).toEqual([]);
        }
    });

    it("refuses a stack name that is not one", () => {
        const r = deploy(["up"], { PULUMI_STACK: "prod --yes" });
        expect(r.status).toBe(2);
        expect(r.stderr).toContain('PULUMI_STACK: got "prod --yes"; must be a stack name');
        expect(r.calls).toEqual([]);
    });

    it("refuses a key that is neither a key nor a file, without printing it", () => {
        const r = deploy(["up"], { PULLSNAP_SSH_PRIVATE_KEY: "hunter2-not-a-key" });
        expect(r.status).toBe(2);
        expect(r.stderr).toContain("PULLSNAP_SSH_PRIVATE_KEY holds neither an OpenSSH private key nor the path of a file with one");
        expect(r.stderr).not.toContain("hunter2");
        expect(r.calls).toEqual([]);
    });

    it("preview: sets the key for the server and each job, then runs pulumi preview --diff", () => {
        const r = deploy(["preview"]);
        expect(r.stderr).toBe("deploy: provisioning key set for the backup server and 2 job(s) of stack prod\n");
        expect(r.status).toBe(0);
        expect(r.calls).toEqual([...keyCalls(), ["preview", "--diff", ...stackFlags()]]);
        expect(r.stdout).toBe(`${PREVIEW_OUTPUT}\n`);
    });

    it("passes the key on stdin only: never in argv, never in the output", () => {
        const r = deploy(["preview"]);
        expect(r.stdin).toBe(`${KEY}\n`.repeat(3));
        const everything = [r.calls.flat().join(" "), r.stdout, r.stderr, r.summary].join("\n");
        expect(everything).not.toContain("SECRETKEYBODY");
        expect(everything).not.toContain(PASSPHRASE);
    });

    it("reads the key from a file, as GitLab's File variables give it", () => {
        const file = path.join(fake, "key-file");
        fs.writeFileSync(file, `${KEY}\n`, { mode: 0o600 });
        const r = deploy(["preview"], { PULLSNAP_SSH_PRIVATE_KEY: file });
        expect(r.status).toBe(0);
        expect(r.stdin).toBe(`${KEY}\n`.repeat(3));
    });

    it("up: runs pulumi up --yes on the stack PULUMI_STACK names", () => {
        const r = deploy(["up"], { PULUMI_STACK: "staging" });
        expect(r.status).toBe(0);
        expect(r.calls).toEqual([...keyCalls("staging"), ["up", "--yes", ...stackFlags("staging")]]);
        expect(r.summary).toContain("### pulumi up of stack `staging`\n");
    });

    it.each([
        ["is missing", "missing", "cannot read pullsnap:jobs from stack prod; is Pulumi.prod.yaml committed?"],
        ["is not a list", '{"objectValue": "main"}', "pullsnap:jobs in stack prod is not a list"],
    ])("stops before pulumi up when pullsnap:jobs %s", (_what, jobs, message) => {
        const r = deploy(["up"], { FAKE_JOBS: jobs });
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`deploy: ${message}`);
        expect(r.calls.map((c) => c[0])).not.toContain("up");
    });

    it("drift: runs pulumi preview --diff --expect-no-changes, exit 0 when converged", () => {
        const r = deploy(["drift"], { FAKE_OUTPUT: "Resources:\n    12 unchanged" });
        expect(r.status).toBe(0);
        expect(r.calls.at(-1)).toEqual(["preview", "--diff", "--expect-no-changes", ...stackFlags()]);
        expect(r.summary).toMatch(/^### No drift in stack `prod`\n\n- `12 unchanged`\n/);
    });

    it.each([
        // What pulumi 3.274 prints: the error right below the counts.
        "error: no changes were expected for preview but changes were proposed",
        "error: no changes were expected but changes were proposed",
    ])("drift: exits 3 when the preview proposes changes, and says so: %s", (message) => {
        const r = deploy(["drift"], { FAKE_OUTPUT: `${PREVIEW_OUTPUT}\n${message}`, FAKE_EXIT: "255" });
        expect(r.status).toBe(3);
        expect(r.stderr).toContain("deploy: drift in stack prod; the diff above names what changed");
        expect(r.summary).toMatch(
            /^### Drift in stack `prod`: `pulumi up` would change the hosts\n\n- `~ 1 to update`\n- `\+ 2 to create`\n- `9 unchanged`\n\n<details>/,
        );
    });

    it("drift: exits 1 when the preview itself fails, e.g. an unreachable host", () => {
        const r = deploy(["drift"], { FAKE_OUTPUT: "error: backup.example.org:22: connection refused", FAKE_EXIT: "255" });
        expect(r.status).toBe(1);
        expect(r.summary).toContain("### Drift check of stack `prod` failed\n");
    });

    it("summarizes: counts in view, the output folded in a code block", () => {
        const r = deploy(["preview"]);
        expect(r.summary).toBe(
            [
                "### pulumi preview of stack `prod`",
                "",
                "- `~ 1 to update`",
                "- `+ 2 to create`",
                "- `9 unchanged`",
                "",
                "<details><summary>pulumi output</summary>",
                "",
                "```diff",
                PREVIEW_OUTPUT,
                "",
                "```",
                "",
                "</details>",
                "",
                "",
            ].join("\n"),
        );
    });

    it("summarizes output holding backticks in a longer fence, and cuts a huge one", () => {
        const r = deploy(["preview"], { FAKE_OUTPUT: `a\n\`\`\`\`\nb\n${"x".repeat(500)}`, PULLSNAP_SUMMARY_MAX_BYTES: "100" });
        expect(r.summary).toContain("\n`````diff\n(");
        expect(r.summary).toMatch(/\(\d+ bytes cut; the job log has all of it\)\nx{99}\n\n`````\n/);
    });

    it("summarizes pulumi up by the counts of the update, not of its preview", () => {
        const output = [
            "Resources:",
            "    + 11 to create",
            "",
            "Updating (prod):",
            "Resources:",
            "    + 3 created",
            "    2 errored",
            "",
            "Duration: 21s",
        ];
        const r = deploy(["up"], { FAKE_OUTPUT: output.join("\n"), FAKE_EXIT: "255" });
        expect(r.status).toBe(1);
        expect(r.summary).toMatch(/^### pulumi up of stack `prod` failed\n\n- `\+ 3 created`\n- `2 errored`\n\n<details>/);
    });

    it("writes no summary when there is nowhere to write it", () => {
        const r = deploy(["preview"], { PULLSNAP_SUMMARY: "" });
        expect(r.status).toBe(0);
        expect(r.summary).toBe("");
    });

    it("is shellcheck-clean", () => {
        ok(run(shellcheck(), ["-x", DEPLOY]), "shellcheck .ci/deploy");
    });

    describe("runs only pulumi commands that README.md's CI section documents", () => {
        /** `pulumi` calls in .ci/deploy, up to the first word that is not literal ("$x", "${args[@]}"). */
        const documented = () => {
            const code = fs
                .readFileSync(DEPLOY, "utf8")
                .split("\n")
                .filter((line) => !/^\s*#/.test(line));
            const found = new Set<string>();
            for (const line of code) {
                for (const m of line.matchAll(/(?:^\s*|\|\s*|\$\()pulumi((?:\s+[^\s"'$|&;<>()]+)+)/g)) found.add(`pulumi${m[1]}`);
            }
            return [...found];
        };

        it("finds each command .ci/deploy runs, and each one it finds is run", () => {
            const commands = documented();
            expect(commands).toEqual([
                "pulumi config set --secret --path pullsnap:backupServer.connection.privateKey",
                "pulumi config get --path pullsnap:jobs --json",
                "pulumi config set --secret --path",
                "pulumi preview --diff",
                "pulumi up --yes",
                "pulumi preview --diff --expect-no-changes",
            ]);
            const ran = ["preview", "up", "drift"].flatMap((sub) => deploy([sub]).calls.map((argv) => `pulumi ${argv.join(" ")}`));
            for (const call of ran)
                expect(
                    commands.some((c) => call.startsWith(`${c} --stack`) || call.startsWith(`${c} pullsnap:`)),
                    call,
                ).toBe(true);
            for (const command of commands)
                expect(
                    ran.some((call) => call.startsWith(command)),
                    command,
                ).toBe(true);
        });

        /** README.md from the heading (## or ###) CI deploys to the next one of the same or a higher level. */
        const ciSection = () => {
            const readme = fs.readFileSync(path.join(REPO_DIR, "README.md"), "utf8");
            const heading = readme.match(/^(#{2,3}) CI deploys\n/m);
            const rest = heading ? readme.slice((heading.index ?? 0) + heading[0].length) : undefined;
            const section = rest?.split(new RegExp(`^#{1,${heading?.[1].length}} `, "m"))[0];
            expect(section, 'README.md has no "## CI deploys" section').toBeDefined();
            return section ?? "";
        };

        it("documents each of them in README.md, section CI deploys", () => {
            const section = ciSection();
            for (const command of documented()) expect(section, `README.md, CI deploys, lacks: ${command}`).toContain(command);
            for (const name of SECRET_VARS) expect(section).toContain(name);
        });

        it("documents there the test job and the switch of the e2e job", () => {
            const section = ciSection();
            for (const text of ["`test` job", "`needs:`", UNIT_TESTS, "`e2e` job", "PULLSNAP_E2E_RUNNER", "`.ci/run`", "/dev/loop"])
                expect(section, `README.md, CI deploys, lacks: ${text}`).toContain(text);
            for (const file of [WORKFLOW, GITLAB_EXAMPLE]) expect(fs.readFileSync(file, "utf8")).toContain("PULLSNAP_E2E_RUNNER");
        });
    });
});
