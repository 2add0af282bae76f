// The backup key, stolen: every attack of test/fixtures/hostile-rsync-client.sh
// against the real source, through sshd, the forced command, rsyncr and the
// capability copy of rsync. The canaries are rsyncr's own files in a folder
// rsyncr may write, so an attack that got past the gate would change them;
// the outside secret is root's, which the capability copy can read. Each
// attack is judged by its effect on the source, and the real pull must still
// work. test/hosts/rsyncGate.test.ts runs the same attacks locally, also
// without the gate, to show that they have effects there.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fs from "fs";
import * as path from "path";
import { Lab, REPO_DIR, Stack } from "./harness";

// Its own ports and state, apart from the demo's lab and the other suites'.
const lab = new Lab(2281);
const stack = new Stack("hostile");
const CANARY = "/srv/canary";
const OUTSIDE = "/opt/outside/secret.txt";
const SECRET = "pullsnap-lab-outside-secret-51c2";
const ATTACKS = fs.readFileSync(path.join(REPO_DIR, "test/fixtures/hostile-rsync-client.sh"), "utf8");

function pulumiOk(...args: string[]) {
    const r = stack.pulumi(...args);
    if (r.status !== 0) {
        throw new Error(`pulumi ${args.join(" ")} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    }
    return r;
}

describe("a hostile client with the stolen backup key", () => {
    beforeAll(() => {
        lab.up();
        stack.init();
        stack.configureForLab(lab);
        // The canaries' folder is a job path, so the gate must let the real pull read it.
        pulumiOk("config", "set", "--path", "pullsnap:jobs[0].paths[3]", CANARY);
        pulumiOk("up", "--yes", "--skip-preview");
        lab.ok(
            "main",
            `set -e
            install -d -o rsyncr -g rsyncr -m 0755 ${CANARY} ${CANARY}/drop
            for i in 1 2 3; do echo "victim $i" >${CANARY}/victim-$i; done
            chown rsyncr:rsyncr ${CANARY}/victim-*
            install -d -m 0700 /opt/outside && echo ${SECRET} >${OUTSIDE} && chmod 0600 ${OUTSIDE}
            ln -sfn ${OUTSIDE} ${CANARY}/link-out && ln -sfn /opt/outside ${CANARY}/dirlink-out`,
        );
    });

    afterAll(() => {
        lab.down();
        stack.remove();
    });

    it("gives the forced command the job's paths and nothing else", () => {
        const line = lab.ok("main", "cat /var/lib/rsync-readcap/.ssh/authorized_keys").trim();
        expect(line).toMatch(
            /^restrict,from="10\.0\.2\.2",command="\/usr\/local\/libexec\/rsync-readcap\/rsync-gate \/srv\/data \/root \/etc \/srv\/canary" ssh-ed25519 \S+/,
        );
    });

    it("changes nothing on the source and reads nothing outside the job's paths", () => {
        const main = lab.config().main as { pullHost: string; pullPort: number };
        // The thief has the backup server's key and its pinned view of main. From main
        // itself, through the user network's gateway, it arrives from the backup
        // server's address, so from= lets it in as it would the backup server.
        const key = lab.ok("backup", "cat /etc/pullsnap/id_ed25519");
        const knownHosts = lab.ok("backup", "cat /etc/pullsnap/known_hosts.d/main");
        const out = lab.ok(
            "main",
            `set -e
            work=$(mktemp -d)
            install -m 0600 /dev/stdin /root/stolen-key <<'PULLSNAP_KEY'
${key.trim()}
PULLSNAP_KEY
            printf '%s' '${knownHosts.trim()}' >/root/stolen-known-hosts
            cat >/root/hostile-rsync-client.sh <<'PULLSNAP_ATTACKS'
${ATTACKS.trimEnd()}
PULLSNAP_ATTACKS
            touch /root/attack-marker; sleep 1
            journalctl --rotate >/dev/null 2>&1 || true
            since=$(date +%s)
            TRANSPORT="ssh -i /root/stolen-key -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=/root/stolen-known-hosts -o StrictHostKeyChecking=yes -p ${main.pullPort}" \\
            HOST=rsyncr@${main.pullHost} CANARY=${CANARY} OUTSIDE_FILE=${OUTSIDE} SECRET=${SECRET} WORK="$work" \\
                bash /root/hostile-rsync-client.sh
            echo "--- written by rsyncr since the attacks began"
            find / -xdev \\( -path /proc -o -path /sys -o -path /run -o -path /tmp -o -path /var/log/journal \\) -prune -o \\
                -newer /root/attack-marker \\( -user rsyncr -o -group rsyncr -o -path '${CANARY}/*' \\) -print
            echo "--- refusals logged"
            journalctl -t rsync-readcap --since "@$since" --no-pager -o cat | grep -c '^refused from ' || true`,
        );
        const [attacks, rest] = out.split("--- written by rsyncr since the attacks began\n");
        const [written, refusals] = rest.split("--- refusals logged\n");
        const outcomes = attacks
            .trim()
            .split("\n")
            .map((line) => {
                const [name, code, before, after, loot] = line.split("\t");
                return { name, code: Number(code), before, after, loot };
            });
        console.log(outcomes.map((o) => `${o.name}: exit ${o.code}`).join(", "));
        expect(outcomes.length).toBeGreaterThan(30);
        // The honest pulls, with the runner's own flags among them, still work.
        expect(outcomes.filter((o) => o.name.endsWith("-pull")).map((o) => [o.name, o.code])).toEqual([
            ["honest-pull", 0],
            ["runner-pull", 0],
        ]);
        // No attack changed a canary, planted a file or brought back the secret.
        const baseline = outcomes[0].before;
        expect(outcomes.map((o) => [o.name, o.before, o.after, o.loot])).toEqual(outcomes.map((o) => [o.name, baseline, baseline, "none"]));
        expect(written.trim()).toBe("");
        // Every refusal reached the auth log.
        expect(Number(refusals.trim())).toBe(outcomes.length - 2);
    });

    it("still runs the real backup, which keeps the canaries and the links as links", () => {
        lab.ok("backup", "systemctl start backup_main.service");
        const snapshot = lab.ok("backup", "ls /plus/backup/main/snapshots | grep -v partial | tail -1").trim();
        const out = lab.ok(
            "backup",
            `cd /plus/backup/main/snapshots/${snapshot}${CANARY}
            cat victim-1
            readlink link-out
            grep -rl ${SECRET} /plus/backup/main/snapshots/${snapshot} || echo no-secret`,
        );
        expect(out.trim().split("\n")).toEqual(["victim 1", OUTSIDE, "no-secret"]);
    });
});
