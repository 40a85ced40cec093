/*
 * Business rule "incident-sim: push incident"
 *   Table: Incident [incident]   When: async   Insert: true   Update: true   Order: 300
 *   Condition: current.short_description.changes() || current.description.changes() ||
 *              current.category.changes() || current.assignment_group.changes() || current.state.changes() ||
 *              current.operation() === 'insert'
 *
 * Creates or replaces the incident in incident-sim (PUT /incidents/{number}, REST message "incident-sim",
 * method "put_incident") so the next /similar call can find it. The service answers 200 or 201 once the
 * incident is stored; anything else is logged (the nightly `incident-sim sync servicenow` job catches up).
 */
(function executeRule(current) {
    'use strict';

    var FIELDS = ['short_description', 'description', 'category', 'subcategory', 'cmdb_ci', 'assignment_group',
        'state', 'opened_at', 'resolved_at', 'close_notes', 'problem_id', 'parent_incident', 'sys_id'];

    function valueOf(field) {
        var value = current.getValue(field);
        if (value === null || value === '') {
            return null;
        }
        if (field === 'opened_at' || field === 'resolved_at') {
            return String(value).replace(' ', 'T') + 'Z'; // stored in UTC as "yyyy-MM-dd HH:mm:ss"
        }
        return String(value);
    }

    var number = String(current.getValue('number'));
    var body = {};
    for (var i = 0; i < FIELDS.length; i++) {
        var value = valueOf(FIELDS[i]);
        if (value !== null) {
            body[FIELDS[i]] = value;
        }
    }
    try {
        var request = new sn_ws.RESTMessageV2('incident-sim', 'put_incident');
        request.setStringParameterNoEscape('number', encodeURIComponent(number));
        request.setRequestBody(JSON.stringify(body));
        var response = request.execute();
        var status = response.getStatusCode();
        if (status !== 200 && status !== 201) {
            gs.warn('incident-sim: PUT /incidents/' + number + ' answered ' + status + ': ' + response.getBody());
        }
    } catch (error) {
        gs.error('incident-sim: PUT /incidents/' + number + ' failed: ' + error);
    }
})(current);
