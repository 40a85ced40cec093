// Lints the app's server scripts as ServiceNow runs them (ES5 server-side scripts with the platform's globals per
// script type), and the Node harness and its tests as Node code.
import js from "@eslint/js";

const glide = { gs: "readonly", GlideRecord: "readonly", GlideDateTime: "readonly", sn_ws: "readonly", Class: "readonly",
                JSON: "readonly", encodeURIComponent: "readonly", IncidentSimClient: "readonly", IncidentSimSuggestions: "readonly", IncidentSimQueue: "readonly", x_incsim: "readonly" };
const rules = { strict: ["error", "function"], eqeqeq: "error", curly: "error", "no-implicit-globals": "error",
                "no-unused-vars": "error" };

export default [
  { ignores: ["dist/**", "target/**", "node_modules/**", "src/fluent/**"] },
  js.configs.recommended,
  { // the script includes: each defines its class (a global by design)
    files: ["src/server/IncidentSim*.server.js"],
    languageOptions: { ecmaVersion: 5, sourceType: "script", globals: glide },
    rules: { ...rules, strict: "off", "no-implicit-globals": "off", "no-redeclare": "off" },
  },
  { // business rules: current (and previous)
    files: ["src/server/br_*.server.js"],
    languageOptions: { ecmaVersion: 5, sourceType: "script", globals: { ...glide, current: "readonly", previous: "readonly" } },
    rules,
  },
  { // UI actions: current and action
    files: ["src/server/ua_*.server.js"],
    languageOptions: { ecmaVersion: 5, sourceType: "script", globals: { ...glide, current: "readonly", action: "readonly" } },
    rules,
  },
  { // scheduled jobs: no current
    files: ["src/server/job_*.server.js"],
    languageOptions: { ecmaVersion: 5, sourceType: "script", globals: glide },
    rules,
  },
  {
    files: ["harness/**/*.js", "test/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "commonjs",
                       globals: { require: "readonly", module: "writable", process: "readonly", console: "readonly",
                                  __dirname: "readonly", Buffer: "readonly", fetch: "readonly", AbortSignal: "readonly", URLSearchParams: "readonly",
                                  SharedArrayBuffer: "readonly", Atomics: "readonly" } },
    rules: { eqeqeq: "error", "no-unused-vars": "error" },
  },
];
