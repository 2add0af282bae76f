// A backup volume that fills up: the run fails clearly, earlier snapshots stay intact,
// and once the source shrinks again the next run recovers on its own.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { LoopbackSshd, LoopVolume, Runner, bash, jobSettings, manifest, tempDir } from "./harness";

let dir: string;
let src: string;
let volume: LoopVolume;
let sshd: LoopbackSshd;
let runner: Runner;

beforeAll(async () => {
    dir = await tempDir("pullsnap-full-");
    src = path.join(dir, "source");
    await fs.mkdir(path.join(src, "other"), { recursive: true });
    await bash('head -c 40M /dev/urandom >"$1/first.bin" && echo small >"$1/small.txt"', src);
    volume = await LoopVolume.create(dir, "volume", 300);
    sshd = await LoopbackSshd.start(path.join(dir, "sshd"), src);
    runner = await Runner.create(dir);
    await runner.writeJob("main", jobSettings(sshd, volume.mountpoint));
});

afterAll(async () => {
    await sshd?.stop();
    await volume?.destroy();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe("a full volume", () => {
    it("fails the run with a clear error and leaves earlier snapshots intact", async () => {
        expect((await runner.run(["run", "main"])).code).toBe(0);
        const snapshots = path.join(volume.mountpoint, "main/snapshots");
        const [first] = await fs.readdir(snapshots);
        const before = await manifest(path.join(snapshots, first));

        // More than the volume holds, and incompressible.
        await bash('head -c 400M /dev/urandom >"$1/huge.bin"', src);
        const r = await runner.run(["run", "main"]);
        expect(r.code).toBe(10);
        expect(r.stderr).toContain(`error: transfer failed: the backup volume ${volume.mountpoint} is full (No space left on device)`);
        expect(r.stderr).toContain("no snapshot taken, existing snapshots untouched");
        expect(await fs.readdir(snapshots)).toEqual([first]);
        expect(await manifest(path.join(snapshots, first))).toBe(before);
        expect((await runner.state("main")).last_error).toContain("is full");

        await fs.rm(path.join(src, "huge.bin"));
        await bash('echo more >"$1/after.txt"', src);
        await new Promise((r) => setTimeout(r, 1100));
        const recovered = await runner.run(["run", "main"]);
        expect(recovered.code).toBe(0);
        const names = (await fs.readdir(snapshots)).sort();
        expect(names).toHaveLength(2);
        expect(await manifest(path.join(snapshots, names[1], "srv"), ["other"])).toBe(await manifest(src, ["other"]));
    });
});
