/*
 * IncidentSimQueue: the retry queue of IncidentSimClient (table x_incsim_retry). A call that failed with no answer,
 * 408, 425, 429 or 5xx is queued; the scheduled job "incident-sim: retry queue" runs run() every minute and retries
 * every due entry, oldest first: after base_s * 2^(attempt-1) seconds (capped at max_s, never sooner than the
 * service's Retry-After), at most max_attempts times, then the entry is failed (logged). Entries show their
 * state (queued / done / failed / superseded), attempts, next attempt, last status and last error.
 */
var IncidentSimQueue = Class.create();

IncidentSimQueue.prototype = {
    initialize: function (client) {
        var p = 'x_incsim.retry.';
        this.client = client;
        this.maxAttempts = client._int(p + 'max_attempts', 8);
        this.retryBaseS = client._int(p + 'base_s', 15);
        this.retryMaxS = client._int(p + 'max_s', 600);
        this.retryBatch = client._int(p + 'batch', 100);
    },

    /** Seconds until the next attempt: base * 2^(attempts-1), capped, never under Retry-After. */
    backoffSeconds: function (attempts, retryAfter) {
        var delay = Math.min(this.retryMaxS, this.retryBaseS * Math.pow(2, Math.max(0, attempts - 1)));
        return Math.max(delay, retryAfter || 0);
    },

    failed: function (operation, sysId, number, payload, outcome, queueEntry) {
        var retry = this.client._retryable(outcome);
        gs.warn('incident-sim: ' + operation + ' ' + number + ' failed (' + outcome.error + ')' +
            (retry ? ', queued for retry' : ', not retried'));
        if (queueEntry) {
            return this.finish(queueEntry, outcome, !retry);
        }
        if (!retry) {
            return outcome;
        }
        var entry = new GlideRecord('x_incsim_retry');
        entry.addQuery('operation', operation);
        entry.addQuery('incident_sys_id', sysId);
        entry.addQuery('state', 'queued');
        entry.query();
        if (!(operation !== 'feedback' && entry.next())) { // one queued push/similar per incident is enough
            entry = new GlideRecord('x_incsim_retry');
            entry.initialize();
            entry.setValue('operation', operation);
            entry.setValue('incident_sys_id', sysId);
            entry.setValue('number', number);
            entry.setValue('payload', payload);
            entry.setValue('state', 'queued');
            entry.setValue('attempts', 1);
            this.schedule(entry, 1, outcome);
            entry.insert();
        }
        return outcome;
    },

    schedule: function (entry, attempts, outcome) {
        var next = new GlideDateTime();
        next.addSeconds(this.backoffSeconds(attempts, outcome.retryAfter));
        entry.setValue('next_attempt', next.getValue());
        entry.setValue('last_status', outcome.status);
        entry.setValue('retry_after_s', outcome.retryAfter || 0);
        entry.setValue('last_error', String(outcome.error || '').substring(0, 1000));
    },

    /** Records a queued call's outcome: done, failed (gave up or not retryable) or back in the queue. */
    finish: function (entry, outcome, giveUp) {
        if (!entry) {
            return outcome;
        }
        var attempts = parseInt(entry.getValue('attempts'), 10) || 0;
        if (!outcome.error) {
            entry.setValue('state', 'done');
            entry.setValue('last_status', outcome.status);
            entry.setValue('last_error', '');
        } else if (giveUp || attempts >= this.maxAttempts) {
            entry.setValue('state', 'failed');
            entry.setValue('last_status', outcome.status);
            entry.setValue('last_error', String(outcome.error).substring(0, 1000));
            gs.error('incident-sim: gave up on ' + entry.getValue('operation') + ' ' + entry.getValue('number') +
                ' after ' + attempts + ' attempts: ' + outcome.error);
        } else {
            entry.setValue('attempts', attempts + 1);
            this.schedule(entry, attempts + 1, outcome);
        }
        entry.update();
        return outcome;
    },

    supersede: function (operation, sysId) {
        var entry = new GlideRecord('x_incsim_retry');
        entry.addQuery('operation', operation);
        entry.addQuery('incident_sys_id', sysId);
        entry.addQuery('state', 'queued');
        entry.query();
        while (entry.next()) {
            entry.setValue('state', 'superseded');
            entry.update();
        }
    },

    /** The scheduled job: retries every due entry, oldest first, at most x_incsim.retry.batch per run. */
    run: function () {
        var due = new GlideRecord('x_incsim_retry');
        due.addQuery('state', 'queued');
        due.addQuery('next_attempt', '<=', new GlideDateTime().getValue());
        due.orderBy('next_attempt');
        due.setLimit(this.retryBatch);
        due.query();
        var counts = { done: 0, queued: 0, failed: 0 };
        while (due.next()) {
            var operation = String(due.getValue('operation'));
            var sysId = String(due.getValue('incident_sys_id'));
            var outcome;
            if (operation === 'similar') {
                outcome = this.client.similar(sysId, due);
            } else if (operation === 'push') {
                outcome = this.client.push(sysId, due);
            } else if (operation === 'delete') {
                outcome = this.client.remove(sysId, String(due.getValue('number')), due);
            } else {
                outcome = this.client.sendFeedback(JSON.parse(due.getValue('payload')), sysId, due);
            }
            var state = String(due.getValue('state'));
            counts[state === 'done' ? 'done' : (state === 'queued' ? 'queued' : 'failed')]++;
            if (outcome.status === 429) { // the service is shedding: leave the rest for the next run
                break;
            }
        }
        gs.info('incident-sim retry queue: ' + counts.done + ' done, ' + counts.queued + ' re-queued, ' +
            counts.failed + ' failed');
        return counts;
    },

    type: 'IncidentSimQueue'
};
