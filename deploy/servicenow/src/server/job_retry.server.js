// Scheduled job "incident-sim: retry queue" (every minute): retries the due entries of x_incsim_retry.
(function retryQueue() {
    'use strict';
    new IncidentSimClient().processQueue();
})();
