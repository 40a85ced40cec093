// Business rule "incident-sim: push incident" (incident, async, insert + update; condition: shouldPush, i.e. any
// indexed field changed). Sends the incident as it is when the job runs; if it was deleted meanwhile, nothing is sent.
(function executeRule(current) {
    'use strict';
    new IncidentSimClient().push(String(current.getUniqueValue()));
})(current);
