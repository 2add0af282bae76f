// The generated halves of the config contract: files under
// server/internal/config that the Go side reads, kept fresh by unit tests.
import * as fs from "fs";
import * as path from "path";
import * as prettier from "prettier";
import { expect } from "vitest";

export const SERVER_CONFIG = path.join(__dirname, "..", "..", "server", "internal", "config");

export const REGENERATE =
    "UPDATE_CONFIG_CONTRACT=1 npx vitest run --project unit test/unit/configSchema.test.ts test/unit/configContract.test.ts";

/** Compares a committed JSON file with what it is generated from, or rewrites it when UPDATE_CONFIG_CONTRACT=1. */
export async function expectGenerated(file: string, value: unknown): Promise<void> {
    // Formatted as `prettier --check` wants it, so the file passes the lint too.
    const options = (await prettier.resolveConfig(file)) ?? {};
    const text = await prettier.format(JSON.stringify(value), { ...options, filepath: file });
    if (process.env.UPDATE_CONFIG_CONTRACT === "1") {
        fs.writeFileSync(file, text);
        return;
    }
    const committed = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    expect(committed, `${path.relative(process.cwd(), file)} is stale; regenerate it with: ${REGENERATE}`).toBe(text);
}
