// UI action "Duplicate of this" (x_incsim_suggestion): sets the incident's duplicate field (x_incsim.duplicate_field:
// duplicate_of, or parent_incident) to the suggested incident and posts `duplicate` feedback.
(function duplicateOfThis(current) {
    'use strict';
    var client = new IncidentSimClient();
    var incident = current.incident.getRefRecord();
    var field = incident.isValidField(client.duplicateField) ? client.duplicateField : 'parent_incident';
    incident.setValue(field, current.getValue('suggested'));
    incident.update();
    var outcome = client.verdict(current, 'duplicate');
    gs.addInfoMessage(incident.getValue('number') + ' marked as a duplicate of ' + current.getValue('suggested_number') +
        (outcome.error ? ' (feedback to incident-sim queued: ' + outcome.error + ')' : ''));
    action.setRedirectURL(incident);
})(current);
