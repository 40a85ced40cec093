// A harness of the Glide server APIs the app's scripts use, written to ServiceNow's documented contracts, so the
// scripts run in Node exactly as built by `now-sdk build` (they are read from dist/app, not from src):
//   GlideRecord (query, get, insert, update, deleteRecord, getValue/setValue/getDisplayValue, element.changes(),
//   getRefRecord, operation), GlideDateTime, gs (properties, log, messages), sn_ws.RESTMessageV2 / RESTResponseV2
//   (variable substitution of *declared* variables only, setHttpTimeout, setAuthenticationProfile 'basic'|'oauth2',
//   execute and executeAsync + waitForResponse, getHeader), Class.create, business rules (after: in the
//   transaction; async: queued as a job that runs later, with `current` read again when it runs), UI actions and
//   scheduled jobs. HTTP is real (the service over loopback), made synchronous with a worker thread.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const crypto = require('node:crypto');
const { Worker, MessageChannel, receiveMessageOnPort } = require('node:worker_threads');
const { XMLParser } = require('fast-xml-parser');

const PLATFORM_DEFAULT_TIMEOUT_MS = 175000; // KB0716391: RESTMessageV2 read timeout when none is set

// ---- the built app ----------------------------------------------------------------------------------------------
function loadApp(distDir) {
    const parser = new XMLParser({ ignoreAttributes: false, cdataPropName: false, parseTagValue: false, trimValues: false });
    const app = { properties: {}, rules: [], includes: {}, actions: {}, jobs: {}, messages: {}, fns: [], params: [], fnHeaders: [] };
    const dir = path.join(distDir, 'update');
    for (const file of fs.readdirSync(dir)) {
        const doc = parser.parse(fs.readFileSync(path.join(dir, file), 'utf8')).record_update;
        if (!doc) { continue; }
        const table = doc['@_table'];
        const rec = doc[table];
        if (!rec) { continue; }
        const text = (v) => (v === undefined || v === null ? '' : typeof v === 'object' ? String(v['#text'] ?? '') : String(v));
        if (table === 'sys_properties') { app.properties[text(rec.name)] = text(rec.value); }
        if (table === 'sys_script') {
            app.rules.push({ name: text(rec.name), table: text(rec.collection), when: text(rec.when), active: text(rec.active) === 'true',
                insert: text(rec.action_insert) === 'true', update: text(rec.action_update) === 'true',
                delete: text(rec.action_delete) === 'true', condition: text(rec.condition), order: Number(text(rec.order)),
                script: text(rec.script) });
        }
        if (table === 'sys_script_include') { app.includes[text(rec.name)] = text(rec.script); }
        if (table === 'sys_ui_action') { app.actions[text(rec.name)] = { table: text(rec.table), condition: text(rec.condition), script: text(rec.script) }; }
        if (table === 'sysauto_script') { app.jobs[text(rec.name)] = { script: text(rec.script), interval: text(rec.run_period) }; }
        if (table === 'sys_rest_message') { app.messages[text(rec.sys_id)] = { name: text(rec.name), endpoint: text(rec.rest_endpoint) }; }
        if (table === 'sys_rest_message_fn') {
            app.fns.push({ id: text(rec.sys_id), message: text(rec.rest_message), name: text(rec.function_name),
                method: text(rec.http_method).toUpperCase(), endpoint: text(rec.rest_endpoint) });
        }
        if (table === 'sys_rest_message_fn_parameters') { app.params.push({ fn: text(rec.rest_message_function), name: text(rec.name) }); }
        if (table === 'sys_rest_message_fn_headers') {
            app.fnHeaders.push({ fn: text(rec.rest_message_function), name: text(rec.name), value: text(rec.value) });
        }
    }
    return app;
}

// ---- schema of the tables the scripts touch ---------------------------------------------------------------------
const INCIDENT = {
    display: 'number',
    fields: {
        number: {}, short_description: {}, description: {}, subcategory: { choices: { vpn: 'VPN', email: 'Email' } },
        category: { choices: { network: 'Network', software: 'Software', hardware: 'Hardware', inquiry: 'Inquiry / Help' } },
        state: { choices: { 1: 'New', 2: 'In Progress', 3: 'On Hold', 6: 'Resolved', 7: 'Closed', 8: 'Canceled' } },
        cmdb_ci: { ref: 'cmdb_ci' }, assignment_group: { ref: 'sys_user_group' }, problem_id: { ref: 'problem' },
        parent_incident: { ref: 'incident' }, duplicate_of: { ref: 'incident' }, opened_at: {}, resolved_at: {},
        close_code: {}, close_notes: {}, work_notes: { journal: true }, sys_domain: { ref: 'domain' },
    },
};
function schemaFor(table) {
    if (table === 'incident') { return INCIDENT; }
    if (table === 'x_incsim_suggestion') {
        return { display: 'suggested_number', fields: { incident: { ref: 'incident' }, suggested: { ref: 'incident' }, verdict: {},
            suggested_number: {}, short_description: {}, rank: {}, score: {}, dense: {}, bm25: {}, similar: {}, threshold: {},
            threshold_calibrated: {}, threshold_target: {}, model_version: {}, asked_at: {}, suggested_state: {}, close_code: {},
            close_notes: {}, resolved_at: {}, verdict_by: {}, verdict_at: {}, feedback_state: {} } };
    }
    if (table === 'x_incsim_retry') {
        return { display: 'number', fields: { operation: {}, incident_sys_id: {}, number: {}, payload: {}, state: {}, attempts: {},
            next_attempt: {}, last_status: {}, retry_after_s: {}, last_error: {} } };
    }
    return { display: 'name', fields: { name: {}, number: {}, username: {}, password: {}, token: {} } };
}

function pad(n) { return String(n).padStart(2, '0'); }
function glideDate(ms) {
    const d = new Date(ms);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

class Harness {
    constructor({ distDir = path.join(__dirname, '..', 'dist', 'app'), properties = {}, hasDuplicateOf = true } = {}) {
        this.app = loadApp(distDir);
        this.props = { instance_name: 'harness', ...this.app.properties, ...properties };
        this.db = {};
        this.clockOffsetMs = 0;
        this.requests = []; // every HTTP call: fn, method, url, headers, body, timeoutMs, status
        this.logs = [];
        this.messages = [];
        this.asyncQueue = [];
        this.beforeSend = null; // hook(request) run just before a request leaves (to race a delete against it)
        this.user = 'agent.smith';
        if (!hasDuplicateOf) { delete INCIDENT.fields.duplicate_of; }
        const shared = new SharedArrayBuffer(4);
        this._flag = new Int32Array(shared);
        const { port1, port2 } = new MessageChannel();
        this._port = port1;
        this._worker = new Worker(path.join(__dirname, 'http-worker.js'), { workerData: { shared, port: port2 }, transferList: [port2] });
        this._worker.unref();
        this.context = this._context();
    }

    close() { this._worker.terminate(); }
    now() { return Date.now() + this.clockOffsetMs; }
    advance(seconds) { this.clockOffsetMs += seconds * 1000; }
    table(name) { if (!this.db[name]) { this.db[name] = new Map(); } return this.db[name]; }
    rows(name) { return [...this.table(name).values()]; }

    /** Inserts a record as a user would: after rules now, async rules queued. Returns its sys_id. */
    insert(table, values) {
        const Glide = this.context.GlideRecord;
        const gr = new Glide(table);
        gr.initialize();
        for (const [k, v] of Object.entries(values)) { gr.setValue(k, v); }
        return gr.insert();
    }
    update(table, sysId, values) {
        const gr = new this.context.GlideRecord(table);
        if (!gr.get(sysId)) { throw new Error(`no ${table} ${sysId}`); }
        for (const [k, v] of Object.entries(values)) { gr.setValue(k, v); }
        gr.update();
    }
    remove(table, sysId) {
        const gr = new this.context.GlideRecord(table);
        if (!gr.get(sysId)) { throw new Error(`no ${table} ${sysId}`); }
        gr.deleteRecord();
    }

    /** Runs the queued async business rules (as the scheduler workers would), oldest first. */
    runAsync() {
        let n = 0;
        while (this.asyncQueue.length) { this.asyncQueue.shift()(); n++; }
        return n;
    }
    runJob(name) {
        const job = this.app.jobs[name];
        if (!job) { throw new Error(`no scheduled job ${name}`); }
        return this._run(job.script, {});
    }
    runUiAction(name, table, sysId) {
        const action = this.app.actions[name];
        if (!action) { throw new Error(`no UI action ${name}`); }
        const gr = new this.context.GlideRecord(table);
        if (!gr.get(sysId)) { throw new Error(`no ${table} ${sysId}`); }
        this.redirect = null;
        return this._run(action.script, { current: gr, action: { setRedirectURL: (r) => { this.redirect = r; } } });
    }

    _run(script, globals) { // a rule triggered inside a script gets its own current/action; the caller's come back
        const saved = { current: this.context.current, previous: this.context.previous, action: this.context.action };
        Object.assign(this.context, { current: undefined, previous: undefined, action: undefined }, globals);
        try { return vm.runInContext(script, this.context); } finally { Object.assign(this.context, saved); }
    }

    _rules(table, op, when) {
        return this.app.rules.filter((r) => r.active && r.table === table && r[op] &&
            (when === 'async' ? r.when.startsWith('async') : r.when === when)).sort((a, b) => a.order - b.order);
    }

    _trigger(table, op, gr) {
        for (const rule of this._rules(table, op, 'after')) {
            this._run(`(function(){ return ${rule.condition || 'true'}; })()`, { current: gr }) && this._run(rule.script, { current: gr });
        }
        for (const rule of this._rules(table, op, 'async')) {
            if (!this._run(`(function(){ return ${rule.condition || 'true'}; })()`, { current: gr })) { continue; }
            const sysId = gr.getUniqueValue();
            const snapshot = { ...gr._rec };
            this.asyncQueue.push(() => { // `current` is read again when the job runs (KB0687840)
                const fresh = new this.context.GlideRecord(table);
                if (!fresh.get(sysId)) { fresh._rec = { ...snapshot }; }
                this._run(rule.script, { current: fresh });
            });
        }
    }

    // ---- HTTP (synchronous, real) ---------------------------------------------------------------------------
    /** What the platform does for an OAuth 2.0 entity with the client credentials grant (RFC 6749 4.4): POST the
     * token URL, form-encoded grant_type=client_credentials (and scope), the client authenticated with HTTP Basic
     * (2.3.1: form-urlencoded id and secret); a 200 JSON answer with access_token and token_type bearer (5.1) is
     * kept until expires_in runs out (less a minute); an error answer (5.2) leaves the call without a token. */
    _clientCredentialsToken(profileId, p) {
        this.tokens = this.tokens || {};
        this.tokenRequests = this.tokenRequests || [];
        const held = this.tokens[profileId];
        if (held && held.expiresAt > this.now()) { return held.token; }
        const form = new URLSearchParams({ grant_type: 'client_credentials', ...(p.scope ? { scope: p.scope } : {}) });
        const client = Buffer.from(`${encodeURIComponent(p.client_id)}:${encodeURIComponent(p.client_secret)}`).toString('base64');
        const raw = this._http({ method: 'POST', url: p.token_url, body: form.toString(), timeoutMs: 10000,
            headers: { Authorization: 'Basic ' + client, 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' } });
        let answer;
        try { answer = JSON.parse(raw.body || '{}'); } catch { answer = {}; }
        this.tokenRequests.push({ profileId, status: raw.status, error: answer.error || raw.error || null });
        if (raw.status !== 200 || !answer.access_token || String(answer.token_type).toLowerCase() !== 'bearer') {
            this.logs.push({ level: 'error', msg: `OAuth token request for ${profileId} failed: HTTP ${raw.status} ${answer.error || raw.error || ''}` });
            delete this.tokens[profileId];
            return null;
        }
        const lifetimeS = Number(answer.expires_in) > 0 ? Number(answer.expires_in) : 1800;
        this.tokens[profileId] = { token: answer.access_token, expiresAt: this.now() + Math.max(0, lifetimeS - 60) * 1000 };
        return answer.access_token;
    }

    _http(req) {
        Atomics.store(this._flag, 0, 0);
        this._worker.postMessage(req);
        Atomics.wait(this._flag, 0, 0, req.timeoutMs + 10000);
        const msg = receiveMessageOnPort(this._port);
        return msg ? msg.message : { status: 0, headers: {}, body: '', error: 'harness: no answer' };
    }

    _context() {
        const h = this;
        const ctx = { JSON, Math, String, Number, parseInt, isNaN, Object, Array, Date, encodeURIComponent, Error };

        // ---- GlideDateTime ------------------------------------------------------------------------------------
        class GlideDateTime {
            constructor(value) { this._ms = value ? Date.parse(String(value).replace(' ', 'T') + 'Z') : h.now(); }
            getValue() { return glideDate(this._ms); }
            getDisplayValue() { return this.getValue(); }
            getNumericValue() { return this._ms; }
            addSeconds(s) { this._ms += Number(s) * 1000; }
            toString() { return this.getValue(); }
        }

        // ---- GlideRecord ----------------------------------------------------------------------------------------
        function element(gr, field) {
            const spec = schemaFor(gr._table).fields[field] || {};
            return {
                toString: () => (gr._rec[field] ?? ''),
                getDisplayValue: () => gr.getDisplayValue(field),
                changes: () => gr._changed.has(field),
                nil: () => !gr._rec[field],
                setJournalEntry: (value) => { if (!spec.journal) { throw new Error(`${field} is not a journal field`); } gr.setValue(field, value); },
                getRefRecord: () => { const r = new GlideRecord(spec.ref); r.get(gr._rec[field] || ''); return r; },
            };
        }
        function GlideRecord(table) {
            this._table = table; this._conds = []; this._order = null; this._limit = Infinity; this._rows = []; this._i = -1;
            this._rec = {}; this._changed = new Set(); this._op = null;
            return new Proxy(this, {
                get(t, p) {
                    if (typeof p === 'string' && !(p in t) && schemaFor(table).fields[p]) { return element(t, p); }
                    return t[p];
                },
                set(t, p, v) {
                    if (typeof p === 'string' && !p.startsWith('_') && schemaFor(table).fields[p]) { t.setValue(p, v); } else { t[p] = v; }
                    return true;
                },
            });
        }
        const cmp = (a, b) => (a !== '' && b !== '' && !isNaN(a) && !isNaN(b) ? Number(a) - Number(b) : String(a).localeCompare(String(b)));
        Object.assign(GlideRecord.prototype, {
            addQuery(field, op, value) {
                if (arguments.length === 2) { value = op; op = '='; }
                this._conds.push([field, op, value === null || value === undefined ? '' : String(value)]);
            },
            orderBy(field) { this._order = [field, 1]; },
            orderByDesc(field) { this._order = [field, -1]; },
            setLimit(n) { this._limit = n; },
            query() {
                let rows = h.rows(this._table).filter((r) => this._conds.every(([f, op, v]) => {
                    const x = r[f] ?? ''; const c = cmp(x, v);
                    return { '=': c === 0, '!=': c !== 0, '<': c < 0, '<=': c <= 0, '>': c > 0, '>=': c >= 0 }[op];
                }));
                if (this._order) { const [f, dir] = this._order; rows.sort((a, b) => dir * cmp(a[f] ?? '', b[f] ?? '')); }
                this._rows = rows.slice(0, this._limit).map((r) => r.sys_id); this._i = -1;
            },
            next() {
                while (++this._i < this._rows.length) {
                    const rec = h.table(this._table).get(this._rows[this._i]);
                    if (rec) { this._rec = { ...rec }; this._changed = new Set(); return true; }
                }
                return false;
            },
            hasNext() { return this._i + 1 < this._rows.length; },
            getRowCount() { return this._rows.length; },
            get(a, b) {
                const rec = b === undefined ? h.table(this._table).get(String(a)) : h.rows(this._table).find((r) => r[a] === String(b));
                this._rec = rec ? { ...rec } : {}; this._changed = new Set();
                return Boolean(rec);
            },
            initialize() { this._rec = {}; this._changed = new Set(); },
            newRecord() { this.initialize(); },
            isValidRecord() { return Boolean(this._rec.sys_id) && h.table(this._table).has(this._rec.sys_id); },
            isValidField(f) { return f === 'sys_id' || Boolean(schemaFor(this._table).fields[f]); },
            getUniqueValue() { return this._rec.sys_id || null; },
            getTableName() { return this._table; },
            operation() { return this._op; },
            getValue(f) { const v = this._rec[f]; return v === undefined || v === '' ? null : v; },
            setValue(f, v) {
                const spec = schemaFor(this._table).fields[f] || {};
                const value = v === null || v === undefined ? '' : String(v);
                if (spec.journal) { this._journal = (this._journal || []).concat(value); this._changed.add(f); return; }
                if (this._rec[f] !== value) { this._changed.add(f); }
                this._rec[f] = value;
            },
            getDisplayValue(f) {
                if (f === undefined) { return this._rec[schemaFor(this._table).display] || ''; }
                const spec = schemaFor(this._table).fields[f] || {}; const v = this._rec[f] || '';
                if (spec.ref) { const r = h.table(spec.ref).get(v); return r ? r[schemaFor(spec.ref).display] || '' : ''; }
                if (spec.choices) { return spec.choices[v] || v; }
                return v;
            },
            insert() {
                this._rec.sys_id = this._rec.sys_id || crypto.randomBytes(16).toString('hex');
                this._rec.sys_created_on = glideDate(h.now());
                h.table(this._table).set(this._rec.sys_id, { ...this._rec });
                this._op = 'insert';
                this._saveJournal();
                h._trigger(this._table, 'insert', this);
                this._changed = new Set();
                return this._rec.sys_id;
            },
            update() {
                if (!this._rec.sys_id) { return this.insert(); }
                if (!h.table(this._table).has(this._rec.sys_id)) { return null; } // deleted meanwhile
                h.table(this._table).set(this._rec.sys_id, { ...this._rec });
                this._op = 'update';
                this._saveJournal();
                h._trigger(this._table, 'update', this);
                this._changed = new Set();
                return this._rec.sys_id;
            },
            _saveJournal() {
                if (this._journal) {
                    h.journal = h.journal || [];
                    for (const text of this._journal) { h.journal.push({ table: this._table, sys_id: this._rec.sys_id, field: 'work_notes', text }); }
                    this._journal = null;
                }
            },
            deleteRecord() {
                if (!h.table(this._table).delete(this._rec.sys_id)) { return false; }
                this._op = 'delete';
                h._trigger(this._table, 'delete', this);
                return true;
            },
        });

        // ---- gs ---------------------------------------------------------------------------------------------
        const log = (level) => (msg) => { h.logs.push({ level, msg: String(msg) }); };
        const gs = {
            getProperty: (name, fallback) => (name in h.props ? String(h.props[name]) : fallback),
            setProperty: (name, value) => { h.props[name] = String(value); },
            info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug'),
            getUserName: () => h.user,
            addInfoMessage: (m) => h.messages.push({ type: 'info', text: String(m) }),
            addErrorMessage: (m) => h.messages.push({ type: 'error', text: String(m) }),
        };

        // ---- RESTMessageV2 / RESTResponseV2 ------------------------------------------------------------------
        class RESTResponseV2 {
            constructor(raw) { this._raw = raw; }
            getStatusCode() { return this._raw.status; }
            getBody() { return this._raw.body; }
            getHeader(name) { return this._raw.headers[String(name).toLowerCase()] ?? null; }
            getHeaders() { return { ...this._raw.headers }; }
            haveError() { return this._raw.status === 0 || this._raw.status >= 400; }
            getErrorMessage() { return this._raw.error || (this._raw.status >= 400 ? `Method failed: (${this._raw.status})` : null); }
            getErrorCode() { return this._raw.status === 0 ? 1 : 0; }
            waitForResponse(seconds) { this.waited = seconds; }
        }
        class RESTMessageV2 {
            constructor(name, fnName) {
                const message = Object.entries(h.app.messages).find(([, m]) => m.name === name);
                const fn = message && h.app.fns.find((f) => f.message === message[0] && f.name === fnName);
                if (!fn) { throw new Error(`RESTMessageV2: no HTTP method '${fnName}' on REST message '${name}'`); }
                this._fn = fn; this._vars = {}; this._headers = {}; this._body = null; this._timeout = null;
                this._auth = null; this._mid = null;
                this._declared = new Set(h.app.params.filter((p) => p.fn === fn.id).map((p) => p.name));
                for (const hd of h.app.fnHeaders.filter((x) => x.fn === fn.id)) { this._headers[hd.name] = hd.value; }
            }
            setStringParameterNoEscape(name, value) { this._vars[name] = String(value); }
            setStringParameter(name, value) {
                this._vars[name] = String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
            }
            setRequestHeader(name, value) { this._headers[name] = String(value); }
            setRequestBody(body) { this._body = String(body); }
            setHttpTimeout(ms) { this._timeout = Number(ms); }
            setEndpoint(url) { this._fn = { ...this._fn, endpoint: String(url) }; }
            setMIDServer(name) { this._mid = String(name); }
            setAuthenticationProfile(type, profileId) {
                if (type !== 'basic' && type !== 'oauth2') { throw new Error(`setAuthenticationProfile: type must be 'basic' or 'oauth2', not '${type}'`); }
                this._auth = { type, profileId: String(profileId) };
            }
            _authorization() {
                if (!this._auth) { return null; }
                if (this._auth.type === 'basic') {
                    const p = h.table('sys_auth_profile_basic').get(this._auth.profileId);
                    return p ? 'Basic ' + Buffer.from(`${p.username}:${p.password}`).toString('base64') : null;
                }
                const p = h.table('oauth_entity_profile').get(this._auth.profileId);
                if (!p) { return null; }
                if (!p.token_url) { return 'Bearer ' + p.token; } // a token the OAuth credential already holds
                const token = h._clientCredentialsToken(this._auth.profileId, p);
                return token ? 'Bearer ' + token : null;
            }
            execute() {
                // only declared Variable Substitutions are replaced; anything else stays literal, as on the platform
                const url = this._fn.endpoint.replace(/\$\{(\w+)\}/g, (all, name) => (this._declared.has(name) && name in this._vars ? this._vars[name] : all));
                const headers = { ...this._headers };
                const authorization = this._authorization();
                if (authorization) { headers.Authorization = authorization; }
                const req = { fn: this._fn.name, method: this._fn.method, url, headers, body: this._body ?? undefined,
                    timeoutMs: this._timeout ?? PLATFORM_DEFAULT_TIMEOUT_MS, timeoutSet: this._timeout !== null, mid: this._mid,
                    auth: this._auth ? this._auth.type : null };
                if (h.beforeSend) { const hook = h.beforeSend; h.beforeSend = null; hook(req); }
                const raw = h._http(req);
                h.requests.push({ ...req, status: raw.status, error: raw.error || null, retryAfter: raw.headers['retry-after'] || null });
                return new RESTResponseV2(raw);
            }
            executeAsync() { const r = this.execute(); h.requests[h.requests.length - 1].async = true; return r; }
        }

        Object.assign(ctx, {
            gs, GlideRecord, GlideDateTime, sn_ws: { RESTMessageV2, RESTResponseV2 },
            Class: { create: () => function () { this.initialize.apply(this, arguments); } },
        });
        vm.createContext(ctx);
        for (const [name, script] of Object.entries(h.app.includes)) {
            vm.runInContext(script, ctx);
            ctx.x_incsim = ctx.x_incsim || {};
            ctx.x_incsim[name] = ctx[name];
        }
        return ctx;
    }
}

module.exports = { Harness, loadApp, glideDate, PLATFORM_DEFAULT_TIMEOUT_MS };
