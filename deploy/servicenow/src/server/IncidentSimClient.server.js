/*
 * IncidentSimClient: every call from the instance to incident-sim goes through here.
 *
 * - Authentication from x_incsim.auth_type / x_incsim.auth_profile (setAuthenticationProfile: 'basic' or 'oauth2',
 *   the only types an outbound REST message supports; the service accepts Basic with an API key as password and
 *   OAuth 2.0 bearer JWTs).
 * - A timeout on every call (setHttpTimeout; the platform default is 175 s). Through a MID server: executeAsync and
 *   waitForResponse (the ECC queue caps waits at 30 s).
 * - Failed calls (no answer, 408, 429 with Retry-After, 5xx) go to x_incsim_retry (IncidentSimQueue); the scheduled
 *   job "incident-sim: retry queue" calls processQueue() every minute (bounded exponential back-off, never sooner
 *   than Retry-After, at most x_incsim.retry.max_attempts attempts).
 * - Suggestions are rows of x_incsim_suggestion (a related list on the incident), never current.update():
 *   written by IncidentSimSuggestions.
 */
var IncidentSimClient = Class.create();

IncidentSimClient.MESSAGE = 'incident-sim';
// The fields the service indexes (service/schemas.py IncidentIn); a change to any of them re-sends the incident.
IncidentSimClient.INDEXED = ['short_description', 'description', 'category', 'subcategory', 'cmdb_ci',
    'assignment_group', 'state', 'opened_at', 'resolved_at', 'close_notes', 'problem_id', 'parent_incident',
    'duplicate_of', 'close_code'];
// Sent as `incident-sim sync servicenow` sends them: the raw value (a reference's sys_id, a choice's value) under the
// field's name and, for these, the display value beside it as <field>_display; the service's filters match either.
IncidentSimClient.DISPLAYED = ['category', 'subcategory', 'cmdb_ci', 'assignment_group', 'state', 'sys_domain'];
IncidentSimClient.GLOBAL_DOMAIN = 'global';
IncidentSimClient.DATES = ['opened_at', 'resolved_at'];
IncidentSimClient.RETRYABLE = { 0: true, 408: true, 425: true, 429: true, 500: true, 502: true, 503: true, 504: true };

IncidentSimClient.prototype = {
    initialize: function () {
        var p = 'x_incsim.';
        this.baseUrl = String(gs.getProperty(p + 'service_url', '')).replace(/\/+$/, '');
        this.authType = String(gs.getProperty(p + 'auth_type', 'basic'));
        this.authProfile = String(gs.getProperty(p + 'auth_profile', ''));
        this.midServer = String(gs.getProperty(p + 'mid_server', ''));
        this.topK = this._int(p + 'top_k', 5);
        this.timeoutMs = this._int(p + 'timeout_ms', 5000);
        this.deleteTimeoutMs = this._int(p + 'delete_timeout_ms', 2000);
        this.workNote = gs.getProperty(p + 'work_note.enabled', 'true') === 'true';
        this.domainScoping = String(gs.getProperty(p + 'domain_scoping', 'auto')); // auto | true | false
        this.includeResolution = gs.getProperty(p + 'resolution.enabled', 'true') === 'true';
        this.duplicateField = String(gs.getProperty(p + 'duplicate_field', 'duplicate_of'));
        this.source = 'servicenow:' + String(gs.getProperty('instance_name', 'instance'));
        this.queue = new IncidentSimQueue(this);
    },

    _int: function (name, fallback) {
        var value = parseInt(gs.getProperty(name, String(fallback)), 10);
        return isNaN(value) ? fallback : value;
    },

    /* ---- conditions -------------------------------------------------------------------------------------- */

    /** Push rule condition (evaluated in the saving transaction, where changes() works). */
    shouldPush: function (record) {
        if (gs.getProperty('x_incsim.push.enabled', 'true') !== 'true') {
            return false;
        }
        if (record.operation() === 'insert') {
            return true;
        }
        for (var i = 0; i < IncidentSimClient.INDEXED.length; i++) {
            var field = IncidentSimClient.INDEXED[i];
            if (record.isValidField(field) && record[field].changes()) {
                return true;
            }
        }
        return record.isValidField('sys_domain') && record.sys_domain.changes();
    },

    /** The domain suggestions for `record` are limited to, or '' (no scoping): x_incsim.domain_scoping = true:
     * always the incident's domain; auto (default): its domain unless that is global (no domain separation);
     * false: never. */
    scopeDomain: function (record) {
        if (this.domainScoping === 'false' || !record.isValidField('sys_domain')) {
            return '';
        }
        var domain = String(record.getValue('sys_domain') || '');
        if (this.domainScoping === 'auto' && domain === IncidentSimClient.GLOBAL_DOMAIN) {
            return '';
        }
        return domain;
    },

    /* ---- the HTTP call ------------------------------------------------------------------------------------ */

    _request: function (fn, number, timeoutMs) {
        var request = new sn_ws.RESTMessageV2(IncidentSimClient.MESSAGE, fn);
        request.setStringParameterNoEscape('base_url', this.baseUrl);
        if (number) {
            request.setStringParameterNoEscape('number', encodeURIComponent(number));
        }
        if (this.authProfile) {
            request.setAuthenticationProfile(this.authType, this.authProfile);
        }
        request.setHttpTimeout(timeoutMs || this.timeoutMs);
        if (this.midServer) {
            request.setMIDServer(this.midServer);
        }
        return request;
    },

    /** Sends the request; returns {status, body, retryAfter, error} and never throws. */
    _send: function (request, timeoutMs) {
        var outcome = { status: 0, body: '', retryAfter: 0, error: '' };
        try {
            var response;
            if (this.midServer) { // ECC queue: asynchronous, waits capped at 30 s
                response = request.executeAsync();
                response.waitForResponse(Math.min(30, Math.ceil((timeoutMs || this.timeoutMs) / 1000)));
            } else {
                response = request.execute();
            }
            outcome.status = response.getStatusCode();
            outcome.body = String(response.getBody() || '');
            var retryAfter = parseInt(response.getHeader('Retry-After'), 10);
            outcome.retryAfter = isNaN(retryAfter) ? 0 : retryAfter;
            if (response.haveError() && outcome.status === 0) {
                outcome.error = String(response.getErrorMessage() || 'no answer');
            }
        } catch (ex) {
            outcome.status = 0;
            outcome.error = String(ex && ex.message ? ex.message : ex);
        }
        if (!outcome.error && (outcome.status < 200 || outcome.status > 299)) {
            outcome.error = 'HTTP ' + outcome.status + ': ' + outcome.body.substring(0, 300);
        }
        return outcome;
    },

    _retryable: function (outcome) {
        return IncidentSimClient.RETRYABLE[outcome.status] === true;
    },

    /* ---- what is sent ------------------------------------------------------------------------------------- */

    _value: function (record, field) {
        if (!record.isValidField(field)) {
            return null;
        }
        var raw = record.getValue(field);
        if (raw === null || raw === undefined || String(raw) === '') {
            return null;
        }
        if (IncidentSimClient.DATES.indexOf(field) >= 0) {
            return String(raw).replace(' ', 'T') + 'Z'; // stored in UTC as "yyyy-MM-dd HH:mm:ss"
        }
        return String(raw); // references: the sys_id, choices: the value (as the sync sends them)
    },

    incidentBody: function (record) {
        var body = { number: String(record.getValue('number')), sys_id: String(record.getUniqueValue()) };
        var fields = IncidentSimClient.INDEXED.concat(['sys_domain']);
        for (var i = 0; i < fields.length; i++) {
            var value = this._value(record, fields[i]);
            if (value === null) {
                continue;
            }
            body[fields[i]] = value;
            if (IncidentSimClient.DISPLAYED.indexOf(fields[i]) >= 0) {
                var display = String(record.getDisplayValue(fields[i]) || '');
                if (display && display !== value) {
                    body[fields[i] + '_display'] = display;
                }
            }
        }
        return body;
    },

    similarBody: function (record) {
        var body = {
            short_description: String(record.getValue('short_description') || ''),
            description: String(record.getValue('description') || ''),
            top_k: this.topK,
            exclude: [String(record.getValue('number'))],
            include_resolution: this.includeResolution
        };
        var domain = this.scopeDomain(record);
        if (domain) {
            body.filters = { sys_domain: domain };
        }
        return body;
    },

    /* ---- operations (each returns the outcome; failures are queued) -------------------------------------- */

    _incident: function (sysId) {
        var record = new GlideRecord('incident');
        return record.get(sysId) ? record : null;
    },

    /** Async insert rule: suggestions for the incident `sysId` (re-read now, never current.update()). */
    similar: function (sysId, queueEntry) {
        var record = this._incident(sysId);
        if (!record) {
            return this.queue.finish(queueEntry, { status: 0, error: 'incident deleted before it was answered' }, true);
        }
        var number = String(record.getValue('number'));
        var request = this._request('similar', null);
        request.setRequestBody(JSON.stringify(this.similarBody(record)));
        var outcome = this._send(request);
        if (outcome.status === 200) {
            try {
                new IncidentSimSuggestions(this).write(record, JSON.parse(outcome.body));
            } catch (ex) {
                outcome.status = 0;
                outcome.error = 'unreadable /similar answer: ' + ex;
                gs.error('incident-sim: ' + outcome.error + ' for ' + number);
                return this.queue.finish(queueEntry, outcome, true);
            }
            return this.queue.finish(queueEntry, outcome, false);
        }
        return this.queue.failed('similar', sysId, number, '', outcome, queueEntry);
    },

    /** Async insert/update rule: store the incident as it is now in the service. */
    push: function (sysId, queueEntry) {
        var record = this._incident(sysId);
        if (!record) { // deleted meanwhile: the delete rule removes it from the service
            return this.queue.finish(queueEntry, { status: 0, error: 'incident deleted: not pushed' }, true);
        }
        var number = String(record.getValue('number'));
        var request = this._request('put_incident', number);
        request.setRequestBody(JSON.stringify(this.incidentBody(record)));
        var outcome = this._send(request);
        if (outcome.status === 200 || outcome.status === 201) {
            if (!this._incident(sysId)) { // deleted while the PUT was in flight: make sure it ends deleted
                this.remove(sysId, number);
            }
            return this.queue.finish(queueEntry, outcome, false);
        }
        return this.queue.failed('push', sysId, number, '', outcome, queueEntry);
    },

    /** After-delete rule: remove the incident; 204 = removed, 404 = was not there; anything else is queued. */
    remove: function (sysId, number, queueEntry) {
        var request = this._request('delete_incident', number, this.deleteTimeoutMs);
        var outcome = this._send(request, this.deleteTimeoutMs);
        this.queue.supersede('push', sysId);
        this.queue.supersede('similar', sysId);
        if (outcome.status === 204 || outcome.status === 404 || outcome.status === 200) {
            outcome.error = '';
            return this.queue.finish(queueEntry, outcome, false);
        }
        return this.queue.failed('delete', sysId, number, JSON.stringify({ number: number }), outcome, queueEntry);
    },

    /** UI actions: the agent's verdict on a suggestion, recorded on the row and posted to /feedback. */
    verdict: function (suggestion, verdict) {
        var now = new GlideDateTime();
        var incident = suggestion.incident.getRefRecord();
        var body = {
            incident: String(incident.getValue('number')),
            suggested: String(suggestion.getValue('suggested_number')),
            verdict: verdict,
            source: this.source,
            at: String(now.getValue()).replace(' ', 'T') + 'Z'
        };
        suggestion.setValue('verdict', verdict);
        suggestion.setValue('verdict_by', gs.getUserName());
        suggestion.setValue('verdict_at', now.getValue());
        var outcome = this.sendFeedback(body, String(incident.getUniqueValue()));
        suggestion.setValue('feedback_state', outcome.status >= 200 && outcome.status < 300 ? 'sent' :
            (this._retryable(outcome) ? 'queued' : 'failed'));
        suggestion.update();
        return outcome;
    },

    sendFeedback: function (body, sysId, queueEntry) {
        var request = this._request('feedback', null);
        request.setRequestBody(JSON.stringify(body));
        var outcome = this._send(request);
        if (outcome.status >= 200 && outcome.status < 300) {
            return this.queue.finish(queueEntry, outcome, false);
        }
        return this.queue.failed('feedback', sysId, body.incident, JSON.stringify(body), outcome, queueEntry);
    },

    /** The scheduled job "incident-sim: retry queue" (IncidentSimQueue). */
    processQueue: function () {
        return this.queue.run();
    },

    type: 'IncidentSimClient'
};
