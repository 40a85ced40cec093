// Business rule "incident-sim: suggestions" (incident, async, insert). Reads the incident again by sys_id and
// writes x_incsim_suggestion rows; no current.update() (current is re-read when an async rule runs).
(function executeRule(current) {
    'use strict';
    new IncidentSimClient().similar(String(current.getUniqueValue()));
})(current);
