// UI action "Copy resolution" (x_incsim_suggestion): copies the suggested incident's close code and close notes
// into the incident (it does not resolve it) and records the suggestion as `related`.
(function copyResolution(current) {
    'use strict';
    var incident = current.incident.getRefRecord();
    incident.setValue('close_code', current.getValue('close_code'));
    incident.setValue('close_notes', current.getValue('close_notes'));
    incident.update();
    if (!current.getValue('verdict')) {
        new IncidentSimClient().verdict(current, 'related');
    }
    gs.addInfoMessage('Resolution of ' + current.getValue('suggested_number') + ' copied');
    action.setRedirectURL(incident);
})(current);
