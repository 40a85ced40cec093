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

async function service(path, init = {}) {
    const auth = 'Basic ' + Buffer.from(`${process.env.SIM_USER}:${process.env.SIM_KEY}`).toString('base64');
    const res = await fetch(URL_ + path, { ...init, headers: { Authorization: auth, 'Content-Type': 'application/json' } });
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
    assert.equal(put.assignment_group, 'Network Operations', 'display value sent, not the sys_id');
    assert.equal(put.category, 'Network');
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
