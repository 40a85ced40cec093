// Business rule "incident-sim: delete incident" (incident, after, delete). A short synchronous DELETE
// (x_incsim.delete_timeout_ms) whose answer is checked: 204 or 404 is done, a failure goes to the retry queue.
(function executeRule(current) {
    'use strict';
    new IncidentSimClient().remove(String(current.getUniqueValue()), String(current.getValue('number')));
})(current);
