// A local HTTP listener standing in for Slack or a Matrix homeserver. It runs as
// its own process, because the e2e harness blocks this one in spawnSync while
// the lab VMs post to it; each request becomes one JSON line in a file.
import { spawn, ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface Received {
    method: string;
    url: string;
    headers: Record<string, string>;
    body: string;
}

const SERVER = `
const http = require("http");
const fs = require("fs");
const [log, port] = process.argv.slice(1);
http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
        fs.appendFileSync(log, JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }) + "\\n");
        res.setHeader("content-type", "application/json");
        res.end(req.url.startsWith("/_matrix/") ? '{"event_id":"$e"}' : "ok");
    });
}).listen(Number(port), "127.0.0.1", () => fs.appendFileSync(log, ""));
`;

export class AlertListener {
    private readonly log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pullsnap-alerts-")), "requests.jsonl");
    private child?: ChildProcess;

    constructor(readonly port: number) {}

    /** Starts the listener on 127.0.0.1:port and waits until it accepts. */
    start(): void {
        this.child = spawn(process.execPath, ["-e", SERVER, this.log, String(this.port)], { stdio: "ignore" });
        const deadline = Date.now() + 10_000;
        while (!fs.existsSync(this.log)) {
            if (Date.now() > deadline) throw new Error(`alert listener did not start on 127.0.0.1:${this.port}`);
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        }
    }

    received(): Received[] {
        if (!fs.existsSync(this.log)) return [];
        return fs
            .readFileSync(this.log, "utf8")
            .split("\n")
            .filter(Boolean)
            .map((line) => JSON.parse(line) as Received);
    }

    /** Waits for a request whose body matches; fails naming what did arrive. */
    waitFor(pattern: RegExp, timeoutMs = 60_000): Received {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const found = this.received().find((r) => pattern.test(r.body));
            if (found) return found;
            if (Date.now() > deadline) {
                throw new Error(`no alert matching ${pattern} within ${timeoutMs} ms; received: ${JSON.stringify(this.received())}`);
            }
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
        }
    }

    stop(): void {
        this.child?.kill();
        fs.rmSync(path.dirname(this.log), { recursive: true, force: true });
    }
}
