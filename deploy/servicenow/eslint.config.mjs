// Lints the business rules as ServiceNow runs them: ES5 server-side scripts with ServiceNow's globals.
import js from "@eslint/js";

export default [
  js.configs.recommended,
  {
    files: ["*.js"],
    languageOptions: {
      ecmaVersion: 5,
      sourceType: "script",
      globals: { current: "readonly", previous: "readonly", gs: "readonly", sn_ws: "readonly",
                 GlideRecord: "readonly", JSON: "readonly", encodeURIComponent: "readonly" },
    },
    rules: { strict: ["error", "function"], eqeqeq: "error", "no-var": "off", curly: "error",
             "no-implicit-globals": "error", "no-unused-vars": "error" },
  },
];
