// The built app (dist/app) run against the Glide harness and the REAL incident-sim over loopback.
// Started by tests/test_servicenow_app.py, which serves incident-sim and passes:
//   SIM_URL, SIM_USER (INCIDENT_SIM_BASIC_USER), SIM_KEY (an API key: the Basic password), SIM_TOKEN (a JWT of the
//   configured issuer), SIM_STORM=1 to run only the storm case (against a service with a low max_in_flight).
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { Harness } = require('../harness/glide.js');

const URL_ = process.env.SIM_URL;
const STORM = process.env.SIM_STORM === '1';

function harness(properties = {}) {
    const h = new Harness({ properties: { 'x_incsim.service_url': URL_, 'x_incsim.auth_type': 'basic', 'x_incsim.auth_profile': 'basic1',
        ...properties } });
    h.table('sys_auth_profile_basic').set('basic1', { sys_id: 'basic1', username: process.env.SIM_USER, password: process.env.SIM_KEY });
    h.table('sys_auth_profile_basic').set('wrong', { sys_id: 'wrong', username: process.env.SIM_USER, password: 'not-the-key-0123456789' });
    h.table('oauth_entity_profile').set('oauth1', { sys_id: 'oauth1', token: process.env.SIM_TOKEN });
    h.table('sys_user_group').set('g1', { sys_id: 'g1', name: 'Network Operations' });
    return h;
}

async function service(path, init = {}, retried = false) {
    const auth = 'Basic ' + Buffer.from(`${process.env.SIM_USER}:${process.env.SIM_KEY}`).toString('base64');
    let res;
    try {
        res = await fetch(URL_ + path, { ...init, headers: { Authorization: auth, 'Content-Type': 'application/json' } });
    } catch (err) { // a kept-alive connection the server closed as it was reused (these checks are reads): once more
        if (retried || !err.cause || err.cause.code !== 'UND_ERR_SOCKET') { throw err; }
        return service(path, init, true);
    }
    return { status: res.status, body: res.status === 204 ? null : await res.json() };
}

let seq = 0;
const nextNumber = () => `INC9${String(process.pid % 1000).padStart(3, '0')}${String(++seq).padStart(4, '0')}`;
function newIncident(h, extra = {}) {
    return h.insert('incident', { number: nextNumber(), short_description: 'VPN keeps failing with a certificate error',
        description: 'GlobalProtect says the server certificate is not valid since this morning', category: 'network',
        assignment_group: 'g1', state: '1', opened_at: '2026-11-30 08:00:00', ...extra });
}

test('Basic auth: suggestions land in the table, every call has a timeout, an uncalibrated threshold is said so', { skip: STORM }, async () => {
    const h = harness();
    const sysId = newIncident(h);
    assert.equal(h.rows('x_incsim_suggestion').length, 0, 'nothing before the async rules run');
    h.runAsync();
    const rows = h.rows('x_incsim_suggestion').filter((r) => r.incident === sysId);
    assert.equal(rows.length, 5, JSON.stringify(h.logs));
    assert.ok(rows.every((r) => Number(r.score) > 0 && r.model_version && r.asked_at && r.rank));
    assert.deepEqual(rows.map((r) => Number(r.rank)).sort(), [1, 2, 3, 4, 5]);
    for (const req of h.requests) {
        assert.ok(req.timeoutSet && req.timeoutMs <= 5000, `${req.fn} without a timeout (${req.timeoutMs} ms)`);
        assert.ok(!req.url.includes('${'), `undeclared variable left in ${req.url}`);
        assert.equal(req.auth, 'basic');
    }
    assert.deepEqual(h.requests.map((r) => r.fn).sort(), ['put_incident', 'similar']);
    assert.ok(h.requests.every((r) => r.status >= 200 && r.status < 300), JSON.stringify(h.requests));
    const put = JSON.parse(h.requests.find((r) => r.fn === 'put_incident').body);
    // as the sync sends them: the raw value (sys_id, choice value) and the display value beside it
    assert.equal(put.assignment_group, 'g1');
    assert.equal(put.assignment_group_display, 'Network Operations');
    assert.equal(put.category, 'network');
    assert.equal(put.category_display, 'Network');
    assert.equal(put.state_display, 'New');
    const note = (h.journal || []).find((j) => j.sys_id === sysId);
    const answer = JSON.parse(h.requests.find((r) => r.fn === 'similar').body);
    assert.deepEqual(answer.exclude, [h.table('incident').get(sysId).number]);
    assert.ok(note, 'a work note');
    if (rows[0].threshold_calibrated === 'false') {
        assert.match(note.text, /NOT calibrated/);
        assert.doesNotMatch(note.text, /above the calibrated threshold/);
        assert.ok(rows.every((r) => r.threshold_target === 'uncalibrated default'));
    }
    const stored = await service(`/incidents/${h.table('incident').get(sysId).number}`);
    assert.equal(stored.status, 200);
    h.close();
});

test('OAuth bearer token works', { skip: STORM }, () => {
    const h = harness({ 'x_incsim.auth_type': 'oauth2', 'x_incsim.auth_profile': 'oauth1' });
    const sysId = newIncident(h);
    h.runAsync();
    assert.ok(h.requests.every((r) => r.auth === 'oauth2' && r.headers.Authorization.startsWith('Bearer ey')));
    assert.ok(h.requests.every((r) => r.status >= 200 && r.status < 300), JSON.stringify(h.requests));
    assert.equal(h.rows('x_incsim_suggestion').filter((r) => r.incident === sysId).length, 5);
    h.close();
});

test('OAuth client credentials: the token comes from the issuer (RFC 6749 4.4), once, and a wrong client secret is a visible failure', { skip: STORM || !process.env.SIM_TOKEN_URL }, () => {
    const h = harness({ 'x_incsim.auth_type': 'oauth2', 'x_incsim.auth_profile': 'cc1' });
    const entity = { token_url: process.env.SIM_TOKEN_URL, client_id: process.env.SIM_CLIENT_ID, scope: 'query write' };
    h.table('oauth_entity_profile').set('cc1', { sys_id: 'cc1', ...entity, client_secret: process.env.SIM_CLIENT_SECRET });
    h.table('oauth_entity_profile').set('cc_wrong', { sys_id: 'cc_wrong', ...entity, client_secret: 'not-the-secret' });
    const sysId = newIncident(h);
    newIncident(h);
    h.runAsync();
    assert.ok(h.requests.length >= 4 && h.requests.every((r) => r.status >= 200 && r.status < 300), JSON.stringify(h.requests));
    assert.ok(h.requests.every((r) => r.headers.Authorization.startsWith('Bearer ey')));
    assert.deepEqual(h.tokenRequests, [{ profileId: 'cc1', status: 200, error: null }], 'one token for every call while it is valid');
    assert.equal(h.rows('x_incsim_suggestion').filter((r) => r.incident === sysId).length, 5);
    h.advance(3600); // the token (expires_in 600) has run out: a new one is fetched
    newIncident(h);
    h.runAsync();
    assert.equal(h.tokenRequests.length, 2);
    const w = harness({ 'x_incsim.auth_type': 'oauth2', 'x_incsim.auth_profile': 'cc_wrong' });
    w.table('oauth_entity_profile').set('cc_wrong', { sys_id: 'cc_wrong', ...entity, client_secret: 'not-the-secret' });
    newIncident(w);
    w.runAsync();
    assert.deepEqual(w.tokenRequests.map((t) => [t.status, t.error]), [[401, 'invalid_client'], [401, 'invalid_client']]);
    assert.deepEqual(w.requests.map((r) => r.status), [401, 401], 'no token: the service refuses, not retried');
    assert.ok(w.logs.some((l) => l.level === 'error' && /OAuth token request .* HTTP 401 invalid_client/.test(l.msg)));
    assert.equal(w.rows('x_incsim_retry').length, 0);
    h.close();
    w.close();
});

test('a wrong secret is a visible failure, not a silent one, and is not retried', { skip: STORM }, () => {
    const h = harness({ 'x_incsim.auth_profile': 'wrong' });
    newIncident(h);
    h.runAsync();
    assert.deepEqual(h.requests.map((r) => r.status), [401, 401]);
    const warnings = h.logs.filter((l) => l.level === 'warn').map((l) => l.msg);
    assert.equal(warnings.length, 2);
    assert.ok(warnings.every((w) => /HTTP 401/.test(w) && /not retried/.test(w)), warnings.join('\n'));
    assert.equal(h.rows('x_incsim_retry').length, 0);
    assert.equal(h.rows('x_incsim_suggestion').length, 0);
    h.close();
});

test('a change to any indexed field is pushed (close_notes, resolved_at, problem_id, parent_incident, cmdb_ci, subcategory)', { skip: STORM }, async () => {
    const h = harness();
    const sysId = newIncident(h);
    h.runAsync();
    const number = h.table('incident').get(sysId).number;
    for (const [field, value] of [['close_notes', 'Re-issued the gateway certificate'], ['resolved_at', '2026-11-30 10:00:00'],
        ['subcategory', 'vpn']]) {
        h.requests = [];
        h.update('incident', sysId, { [field]: value });
        h.runAsync();
        assert.deepEqual(h.requests.map((r) => r.fn), ['put_incident'], `change of ${field} not pushed`);
        assert.equal(h.requests[0].status, 200);
    }
    h.requests = [];
    h.update('incident', sysId, { work_notes: 'just a note' });
    h.runAsync();
    assert.equal(h.requests.length, 0, 'a work note alone is not an indexed change');
    const stored = await service(`/incidents/${number}`);
    assert.equal(stored.body.incident.close_notes, 'Re-issued the gateway certificate');
    h.close();
});

test('the UI actions post the right feedback', { skip: STORM }, () => {
    const h = harness();
    const sysId = newIncident(h);
    h.runAsync();
    const rows = h.rows('x_incsim_suggestion').filter((r) => r.incident === sysId).sort((a, b) => a.rank - b.rank);
    const number = h.table('incident').get(sysId).number;
    // the suggested incidents exist in the instance too (the sample's numbers)
    for (const r of rows) { h.table('incident').set('s' + r.rank, { sys_id: 's' + r.rank, number: r.suggested_number, state: '7' }); }
    h.update('x_incsim_suggestion', rows[0].sys_id, { suggested: 's1' });
    h.requests = [];
    h.runUiAction('Duplicate of this', 'x_incsim_suggestion', rows[0].sys_id);
    h.runUiAction('Not similar', 'x_incsim_suggestion', rows[1].sys_id);
    const posted = h.requests.filter((r) => r.fn === 'feedback');
    assert.equal(posted.length, 2);
    const [dup, notSimilar] = posted.map((r) => JSON.parse(r.body));
    assert.deepEqual({ ...dup, at: undefined }, { incident: number, suggested: rows[0].suggested_number, verdict: 'duplicate', source: 'servicenow:harness', at: undefined });
    assert.equal(notSimilar.verdict, 'not_similar');
    assert.equal(notSimilar.suggested, rows[1].suggested_number);
    assert.match(dup.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(posted.every((r) => r.method === 'POST' && r.url === URL_ + '/feedback' && r.timeoutSet));
    assert.equal(h.table('incident').get(sysId).duplicate_of, 's1', 'duplicate_of set');
    assert.equal(h.table('x_incsim_suggestion').get(rows[0].sys_id).verdict, 'duplicate');
    assert.equal(h.table('x_incsim_suggestion').get(rows[1].sys_id).verdict, 'not_similar');
    // the feedback's fate is visible on the row: sent, queued for retry, or failed (a service without /feedback: 404)
    for (const r of [rows[0], rows[1]]) {
        const state = h.table('x_incsim_suggestion').get(r.sys_id).feedback_state;
        const status = posted[r === rows[0] ? 0 : 1].status;
        assert.equal(state, status >= 200 && status < 300 ? 'sent' : status === 404 ? 'failed' : 'queued');
    }
    h.close();
});

test('a delete racing a push ends deleted', { skip: STORM }, async () => {
    const h = harness();
    const sysId = newIncident(h);
    const number = h.table('incident').get(sysId).number;
    // the incident is deleted (after-delete rule runs) while the async push's PUT is on its way
    const hook = (req) => { if (req.fn === 'put_incident') { h.remove('incident', sysId); } else { h.beforeSend = hook; } };
    h.beforeSend = hook;
    h.asyncQueue.reverse(); // push first, then suggestions
    h.runAsync();
    assert.ok(h.requests.some((r) => r.fn === 'put_incident'));
    assert.ok(h.requests.filter((r) => r.fn === 'delete_incident').length >= 1);
    const stored = await service(`/incidents/${number}`);
    assert.equal(stored.status, 404, 'the push brought the deleted incident back');
    // a push job that runs after the delete sends nothing
    const other = newIncident(h);
    h.remove('incident', other);
    h.requests = [];
    h.runAsync();
    assert.ok(!h.requests.some((r) => r.fn === 'put_incident'));
    h.close();
});

test('domains: sys_domain is sent by the push and suggestions never cross domains; filters by display value and sys_id both match', { skip: STORM }, async () => {
    const h = harness();
    h.table('domain').set('d1', { sys_id: 'd1', name: 'ACME' });
    h.table('domain').set('d2', { sys_id: 'd2', name: 'Globex' });
    const text = { short_description: `Badge reader ${process.pid} at the loading dock rejects every card`,
        description: 'The turnstile badge reader blinks red for all employee cards since the firmware update' };
    const acme = newIncident(h, { ...text, sys_domain: 'd1' });
    const globex = newIncident(h, { ...text, sys_domain: 'd2' });
    h.runAsync();
    const [acmeNo, globexNo] = [acme, globex].map((id) => h.table('incident').get(id).number);
    const stored = await service(`/incidents/${globexNo}`);
    assert.equal(stored.body.incident.sys_domain, 'd2');
    assert.equal(stored.body.incident.sys_domain_display, 'Globex');
    h.requests = [];
    const third = newIncident(h, { ...text, sys_domain: 'd1' });
    h.runAsync();
    const asked = JSON.parse(h.requests.find((r) => r.fn === 'similar').body);
    assert.deepEqual(asked.filters, { sys_domain: 'd1' }, 'x_incsim.domain_scoping=auto filters a non-global domain');
    const suggested = h.rows('x_incsim_suggestion').filter((r) => r.incident === third).map((r) => r.suggested_number);
    assert.deepEqual(suggested, [acmeNo], 'only the same domain');
    // the global domain is not filtered under auto, always under true
    h.requests = [];
    newIncident(h, { ...text, sys_domain: 'global' });
    h.runAsync();
    assert.equal(JSON.parse(h.requests.find((r) => r.fn === 'similar').body).filters, undefined);
    const query = (filters) => service('/similar', { method: 'POST', body: JSON.stringify({ ...text, top_k: 5, filters }) })
        .then((a) => a.body.results.map((r) => r.number).sort());
    assert.deepEqual(await query({ sys_domain: 'd1', assignment_group: 'Network Operations' }), [acmeNo, h.table('incident').get(third).number].sort());
    assert.deepEqual(await query({ sys_domain: 'ACME', assignment_group: 'g1' }), await query({ sys_domain: 'd1', assignment_group: 'Network Operations' }));
    assert.deepEqual(await query({ sys_domain: ['d1', 'Globex'], category: 'Network' }), await query({ sys_domain: ['ACME', 'd2'], category: 'network' }));
    assert.deepEqual(await query({ sys_domain: 'd2', assignment_group: 'Service Desk' }), []);
    h.close();
});

test('resolutions: /similar returns them when asked, the list shows them, "Copy resolution" copies them', { skip: STORM }, async () => {
    const h = harness();
    h.table('domain').set('d3', { sys_id: 'd3', name: 'Initech' });
    const text = { short_description: `Label printer ${process.pid} in shipping prints blank labels`,
        description: 'Zebra printer feeds labels but prints nothing since the ribbon change', sys_domain: 'd3' };
    const solved = newIncident(h, { ...text, state: '6', close_code: 'Solved (Permanently)',
        close_notes: 'Ribbon was inserted inside out; re-threaded it', resolved_at: '2026-11-30 10:00:00' });
    h.runAsync();
    const solvedNo = h.table('incident').get(solved).number;
    const direct = await service('/similar', { method: 'POST', body: JSON.stringify({ ...text, sys_domain: undefined, top_k: 1,
        filters: { sys_domain: 'd3' }, include_resolution: true }) });
    assert.equal(direct.status, 200);
    assert.deepEqual([direct.body.results[0].close_code, direct.body.results[0].close_notes, direct.body.results[0].resolved_at],
        ['Solved (Permanently)', 'Ribbon was inserted inside out; re-threaded it', '2026-11-30T10:00:00Z']);
    const plain = await service('/similar', { method: 'POST', body: JSON.stringify({ text: text.short_description, top_k: 1, filters: { sys_domain: 'd3' } }) });
    assert.equal(plain.body.results[0].close_notes, null, 'not without include_resolution');
    h.table('incident').delete(solved); // not in this instance's table (e.g. archived): the row's resolution comes from the service
    const fresh = newIncident(h, text);
    h.runAsync();
    assert.equal(JSON.parse(h.requests.filter((r) => r.fn === 'similar').pop().body).include_resolution, true);
    const row = h.rows('x_incsim_suggestion').find((r) => r.incident === fresh && r.suggested_number === solvedNo);
    assert.ok(row, JSON.stringify(h.rows('x_incsim_suggestion').filter((r) => r.incident === fresh)));
    assert.deepEqual([row.close_code, row.close_notes, row.resolved_at], ['Solved (Permanently)', 'Ribbon was inserted inside out; re-threaded it', '2026-11-30 10:00:00']);
    h.runUiAction('Copy resolution', 'x_incsim_suggestion', row.sys_id);
    const copied = h.table('incident').get(fresh);
    assert.deepEqual([copied.close_code, copied.close_notes], ['Solved (Permanently)', 'Ribbon was inserted inside out; re-threaded it']);
    assert.equal(h.table('x_incsim_suggestion').get(row.sys_id).verdict, 'related');
    h.close();
});

test('a null `similar` or threshold (no calibrated threshold) is "not calibrated" and "no flag yet", never flagged nor "related"', { skip: STORM }, () => {
    const h = harness();
    const sysId = newIncident(h);
    const record = new h.context.GlideRecord('incident');
    record.get(sysId);
    const client = new h.context.IncidentSimClient();
    new h.context.IncidentSimSuggestions(client).write(record, { results: [{ number: 'INC0000001', short_description: 'x',
        score: 0.91, dense: 0.9, bm25: 0.93, similar: null }], threshold: null, threshold_source: 'uncalibrated_default',
        threshold_target: null, model_version: 'm1' });
    const [row] = h.rows('x_incsim_suggestion').filter((r) => r.incident === sysId);
    assert.equal(String(row.similar), 'false');
    assert.equal(String(row.threshold_calibrated), 'false');
    assert.equal(row.threshold_target, 'uncalibrated default');
    const note = h.journal.filter((j) => j.sys_id === sysId).pop();
    assert.match(note.text, /threshold none is NOT calibrated/);
    assert.match(note.text, /INC0000001 \(no flag yet, score 0\.910\)/);
    assert.doesNotMatch(note.text, /related/);
    h.close();
});

test('storm: 500 incidents in a minute against a shedding service, every one answered', { skip: !STORM, timeout: 600000 }, () => {
    const h = harness({ 'x_incsim.work_note.enabled': 'false', 'x_incsim.push.enabled': 'false' });
    const started = Date.now();
    const ids = [];
    for (let i = 0; i < 500; i++) {
        ids.push(newIncident(h, { short_description: `Storm ${i}: VPN gateway down for remote users`, description: `site ${i % 17}` }));
        h.runAsync(); // the async rule runs as its job gets a worker
    }
    const insertS = (Date.now() - started) / 1000;
    if (process.env.SIM_STORM_FLAG) { require('node:fs').writeFileSync(process.env.SIM_STORM_FLAG, 'done'); } // the other callers stop
    const shed = h.requests.filter((r) => r.status === 429);
    const queuedFirst = h.rows('x_incsim_retry').length;
    assert.ok(shed.length > 0, 'the service never shed: the storm did not storm');
    assert.ok(shed.every((r) => r.retryAfter), '429 without Retry-After');
    for (const entry of h.rows('x_incsim_retry')) {
        assert.ok(entry.next_attempt >= entry.sys_created_on, 'next attempt in the past');
        assert.ok(Number(entry.retry_after_s) >= 1);
    }
    let runs = 0;
    while (h.rows('x_incsim_retry').some((e) => e.state === 'queued') && runs < 200) {
        h.advance(60); // the job runs every minute
        h.runJob('incident-sim: retry queue');
        runs++;
    }
    const answered = new Set(h.rows('x_incsim_suggestion').map((r) => r.incident));
    const missing = ids.filter((id) => !answered.has(id));
    const states = {};
    for (const e of h.rows('x_incsim_retry')) { states[e.state] = (states[e.state] || 0) + 1; }
    console.log(JSON.stringify({ storm: { incidents: 500, insert_s: insertS, first_pass_429: shed.length, queued: queuedFirst,
        job_runs: runs, retry_states: states, calls: h.requests.length, answered: answered.size } }));
    assert.deepEqual(missing, [], `${missing.length} incidents never answered`);
    assert.ok(!states.failed, 'entries gave up');
    h.close();
});
