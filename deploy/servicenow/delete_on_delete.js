/*
 * Business rule "incident-sim: delete incident"
 *   Table: Incident [incident]   When: after   Delete: true   Order: 300
 *
 * Removes the incident from incident-sim (DELETE /incidents/{number}, REST message "incident-sim", method
 * "delete_incident"). A delete rule cannot be async (the record is gone), so the call is sent with
 * executeAsync(): the delete transaction does not wait for it. 204 = removed, 404 = it was not there.
 */
(function executeRule(current) {
    'use strict';

    var number = String(current.getValue('number'));
    try {
        var request = new sn_ws.RESTMessageV2('incident-sim', 'delete_incident');
        request.setStringParameterNoEscape('number', encodeURIComponent(number));
        request.executeAsync();
    } catch (error) {
        gs.error('incident-sim: DELETE /incidents/' + number + ' failed: ' + error);
    }
})(current);
