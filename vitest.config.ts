import { defineConfig } from "vitest/config";

// Three suites with different costs: unit tests need nothing; runner tests need
// root, loop devices and a loopback sshd; e2e tests boot the QEMU lab.
export default defineConfig({
    test: {
        projects: [
            { test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
            {
                test: {
                    name: "runner",
                    include: ["test/runner/**/*.test.ts", "test/hosts/**/*.test.ts"],
                    fileParallelism: false,
                    testTimeout: 120_000,
                    hookTimeout: 120_000,
                },
            },
            {
                test: {
                    name: "e2e",
                    include: ["test/e2e/**/*.test.ts"],
                    fileParallelism: false,
                    testTimeout: 900_000,
                    hookTimeout: 1_200_000,
                },
            },
        ],
    },
});
