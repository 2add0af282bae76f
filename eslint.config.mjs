import tseslint from "typescript-eslint";
import pulumi from "@pulumi/eslint-plugin";

export default tseslint.config({ ignores: ["node_modules/", "bin/"] }, ...tseslint.configs.recommended, {
    files: ["**/*.ts"],
    plugins: { "@pulumi": pulumi },
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
        // A template literal around an Output prints "Calling [toString] on an Output" instead of the value.
        "@pulumi/no-output-in-template-literal": "error",
    },
});
