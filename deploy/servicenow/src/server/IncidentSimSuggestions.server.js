/*
 * IncidentSimSuggestions: turns a /similar answer into rows of x_incsim_suggestion (the "incident-sim suggestions"
 * related list on the incident form) and, if x_incsim.work_note.enabled, one short work note.
 *
 * - A retried call replaces the incident's rows, never duplicates them.
 * - "Similar" is said only when the service says `similar: true`. `similar: null` (the service's threshold is the
 *   uncalibrated default: the quickstart answers so until its background calibration is done) is "no flag yet":
 *   neither similar nor a "not similar"; the row keeps similar false beside threshold_calibrated false, and the work
 *   note says "no flag yet". A null threshold is "not calibrated" too.
 * - The resolution of a resolved suggested incident (close code, close notes, resolved at) comes from the answer
 *   (include_resolution) and, where the service has none, from the instance's own record of that incident.
 */
var IncidentSimSuggestions = Class.create();

IncidentSimSuggestions.prototype = {
    initialize: function (client) {
        this.client = client;
    },

    /** Seconds-resolution UTC "yyyy-MM-dd HH:mm:ss" of an ISO 8601 moment from the service ('' if none). */
    _glideDate: function (iso) {
        if (!iso) {
            return '';
        }
        var match = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)/.exec(String(iso));
        return match ? match[1] + ' ' + match[2] : '';
    },

    _target: function (answer, calibrated) {
        var t = answer.threshold_target;
        return calibrated && t ? t.unit + ' <= ' + t.target + ' (confidence ' + t.confidence + ')' :
            'uncalibrated default';
    },

    write: function (record, answer) {
        var sysId = String(record.getUniqueValue());
        var old = new GlideRecord('x_incsim_suggestion');
        old.addQuery('incident', sysId);
        old.query();
        while (old.next()) {
            old.deleteRecord();
        }
        var calibrated = answer.threshold_source === 'calibrated' && typeof answer.threshold === 'number';
        var target = this._target(answer, calibrated);
        var now = new GlideDateTime();
        var lines = [];
        for (var i = 0; i < answer.results.length; i++) {
            var result = answer.results[i];
            var flagged = result.similar === true;
            var noFlagYet = result.similar !== true && result.similar !== false; // null: no calibrated threshold yet
            var row = new GlideRecord('x_incsim_suggestion');
            row.initialize();
            row.setValue('incident', sysId);
            row.setValue('suggested_number', result.number);
            row.setValue('short_description', String(result.short_description || '').substring(0, 160));
            row.setValue('rank', i + 1);
            row.setValue('score', result.score);
            row.setValue('dense', result.dense);
            row.setValue('bm25', result.bm25);
            row.setValue('similar', flagged);
            row.setValue('threshold', typeof answer.threshold === 'number' ? answer.threshold : '');
            row.setValue('threshold_calibrated', calibrated);
            row.setValue('threshold_target', target);
            row.setValue('model_version', answer.model_version);
            row.setValue('asked_at', now.getValue());
            this._resolution(row, result);
            row.insert();
            var flag = noFlagYet ? 'no flag yet' : flagged ? (calibrated ? 'SIMILAR' : 'above the default threshold') :
                'related';
            lines.push('- ' + result.number + ' (' + flag + ', score ' + Number(result.score).toFixed(3) + '): ' +
                result.short_description);
        }
        if (this.client.workNote && lines.length > 0) {
            this._workNote(sysId, answer, calibrated, target, lines);
        }
    },

    /** The suggested incident: its record here (a reference agents can open) and its resolution. */
    _resolution: function (row, result) {
        var closeCode = result.close_code || '';
        var closeNotes = result.close_notes || '';
        var resolvedAt = this._glideDate(result.resolved_at);
        var suggested = new GlideRecord('incident');
        if (suggested.get('number', result.number)) {
            row.setValue('suggested', suggested.getUniqueValue());
            row.setValue('suggested_state', suggested.getDisplayValue('state'));
            closeCode = closeCode || suggested.getValue('close_code') || '';
            closeNotes = closeNotes || suggested.getValue('close_notes') || '';
            resolvedAt = resolvedAt || suggested.getValue('resolved_at') || '';
        }
        row.setValue('close_code', closeCode);
        row.setValue('close_notes', String(closeNotes).substring(0, 4000));
        row.setValue('resolved_at', resolvedAt);
    },

    _workNote: function (sysId, answer, calibrated, target, lines) {
        var threshold = typeof answer.threshold === 'number' ? Number(answer.threshold).toFixed(3) : 'none';
        var header = calibrated ?
            'incident-sim suggestions (threshold ' + threshold + ' calibrated for ' + target + '; model ' +
            answer.model_version + '):' :
            'incident-sim suggestions. The threshold ' + threshold + ' is NOT calibrated (uncalibrated default): ' +
            'no suggestion is flagged similar or not similar until it is ("no flag yet"); treat "similar" as ' +
            'unreliable. Model ' + answer.model_version + ':';
        if (answer.index_filling) {
            header += '\n(' + answer.index_filling.message + ')';
        }
        // a fresh record, not `current` (re-read when an async rule runs); the journal, audit and notifications
        // run as for any work note (no setWorkflow(false))
        var incident = new GlideRecord('incident');
        if (incident.get(sysId)) {
            incident.work_notes.setJournalEntry(header + '\n' + lines.join('\n') +
                '\n(see the incident-sim suggestions list)', gs.getUserName());
            incident.update();
        }
    },

    type: 'IncidentSimSuggestions'
};
