/*
 * Business rule "incident-sim: similar incidents"
 *   Table: Incident [incident]   When: async   Insert: true   Order: 200
 *
 * Asks incident-sim for the earlier incidents most like the new one (POST /similar, through the outbound REST
 * message "incident-sim", method "similar") and writes them to a work note. Async: saving the incident never
 * waits for it, and a failure only leaves a line in the system log.
 */
(function executeRule(current) {
    'use strict';

    var TOP_K = 5;

    function line(result) {
        var flag = result.similar ? 'SIMILAR' : 'related';
        return '- ' + result.number + ' (' + flag + ', score ' + result.score.toFixed(3) + '): ' +
            result.short_description;
    }

    var number = String(current.getValue('number'));
    try {
        var request = new sn_ws.RESTMessageV2('incident-sim', 'similar');
        request.setRequestBody(JSON.stringify({
            short_description: String(current.getValue('short_description') || ''),
            description: String(current.getValue('description') || ''),
            top_k: TOP_K,
            exclude: [number]
        }));
        var response = request.execute();
        var status = response.getStatusCode();
        if (status !== 200) {
            gs.warn('incident-sim: POST /similar answered ' + status + ' for ' + number + ': ' +
                response.getErrorMessage());
            return;
        }
        var answer = JSON.parse(response.getBody());
        var lines = [];
        for (var i = 0; i < answer.results.length; i++) {
            lines.push(line(answer.results[i]));
        }
        if (lines.length === 0) {
            return;
        }
        var header = 'Earlier incidents like this one (incident-sim; SIMILAR = above the calibrated threshold ' +
            answer.threshold.toFixed(3) + ', model ' + answer.model_version + '):';
        if (answer.index_filling) {
            header += '\n(' + answer.index_filling.message + ')';
        }
        current.work_notes = header + '\n' + lines.join('\n');
        current.setWorkflow(false); // a work note only: no other business rule needs to run again
        current.update();
    } catch (error) {
        gs.error('incident-sim: POST /similar failed for ' + number + ': ' + error);
    }
})(current);
