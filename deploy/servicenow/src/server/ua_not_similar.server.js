// UI action "Not similar" (x_incsim_suggestion): records the verdict and posts `not_similar` feedback.
(function notSimilar(current) {
    'use strict';
    var outcome = new IncidentSimClient().verdict(current, 'not_similar');
    gs.addInfoMessage(current.getValue('suggested_number') + ' marked as not similar' +
        (outcome.error ? ' (feedback to incident-sim queued: ' + outcome.error + ')' : ''));
    action.setRedirectURL(current.incident.getRefRecord());
})(current);
