// The JSON Schema of the stack config, generated from the zod schema so that
// the backup server's program validates against the same rules as
// `pulumi preview`. The Go side embeds the generated file
// (server/internal/config/stack.schema.json); test/unit/configSchema.test.ts
// fails when that file is stale and says how to regenerate it.
//
// What JSON Schema cannot say stays TypeScript-only:
// - the cross-key rules in config.ts's crossKeyProblems (unique job names and
//   drives, wipeDrives within drives, removeDrives outside them, the Matrix
//   keys, a profile's minimum number of drives);
// - every message: the schema says where a value is wrong, the messages of
//   `pulumi preview` say why.
import { z } from "zod";
import { StackConfig } from "./config";

/** The JSON Schema (draft 2020-12) of what `pulumi config` may hold for pullsnap; `schema` is for tests. */
export function stackConfigJSONSchema(schema: z.ZodType = StackConfig): Record<string, unknown> {
    return z.toJSONSchema(schema, {
        target: "draft-2020-12",
        // The input side: keys with a default may be left out, as in Pulumi.<stack>.yaml.
        io: "input",
        // A type with no JSON Schema form (a transform, a date) fails here.
        unrepresentable: "throw",
        // Every subschema inline, so that an error's schema location reads like the config.
        reused: "inline",
        cycles: "throw",
        // z.string().includes() adds `format: "includes"`, which no validator
        // knows; its pattern carries the rule.
        override: ({ zodSchema, jsonSchema, path }) => {
            if (jsonSchema.format === "includes") delete jsonSchema.format;
            // A refine would silently vanish from the schema: write the rule as a
            // regex or an enum, or, across keys, in crossKeyProblems.
            if (zodSchema._zod.def.checks?.some((check) => check._zod.def.check === "custom")) {
                throw new Error(`config.ts: the refine at ${path.join(".") || "the root"} has no JSON Schema form`);
            }
        },
    }) as Record<string, unknown>;
}
