import * as path from "path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { StackConfig } from "../../components/config";
import { stackConfigJSONSchema } from "../../components/configSchema";
import { expectGenerated, SERVER_CONFIG } from "./configGenerated";

/** Every string under a key, anywhere in a JSON value (so not a property's schema named like a keyword). */
function valuesOf(key: string, value: unknown): string[] {
    if (Array.isArray(value)) return value.flatMap((v) => valuesOf(key, v));
    if (value === null || typeof value !== "object") return [];
    return Object.entries(value).flatMap(([k, v]) => (k === key && typeof v === "string" ? [v] : valuesOf(key, v)));
}

describe("the stack config's JSON Schema", () => {
    it("is committed where the backup server's program embeds it", async () => {
        await expectGenerated(path.join(SERVER_CONFIG, "stack.schema.json"), stackConfigJSONSchema());
    });

    it("closes every object, so a misspelled key fails on both sides", () => {
        const schema = stackConfigJSONSchema();
        const objects = (function walk(v: unknown): Record<string, unknown>[] {
            if (Array.isArray(v)) return v.flatMap(walk);
            if (v === null || typeof v !== "object") return [];
            const o = v as Record<string, unknown>;
            return [...(o.type === "object" ? [o] : []), ...Object.values(o).flatMap(walk)];
        })(schema);
        expect(objects.length).toBeGreaterThan(5);
        expect(objects.filter((o) => o.additionalProperties !== false)).toEqual([]);
    });

    it("uses only standard formats and patterns RE2 can read", () => {
        const schema = stackConfigJSONSchema();
        expect(valuesOf("format", schema)).toEqual([]);
        // Lookaround and backreferences; server/internal/config/ecma.go refuses them too.
        expect(valuesOf("pattern", schema).filter((p) => /\(\?<?[=!]|\\[1-9]/.test(p))).toEqual([]);
    });

    it("refuses a refine, which JSON Schema would drop", () => {
        const refined = StackConfig.extend({ jobs: z.array(z.string().refine((s) => s !== "x")) });
        expect(() => stackConfigJSONSchema(refined)).toThrow("the refine at properties.jobs.items has no JSON Schema form");
    });
});
