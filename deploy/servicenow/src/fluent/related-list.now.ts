import { List, Record, default_view } from '@servicenow/sdk/core'

// The "incident-sim suggestions" related list at the bottom of the incident form (Default view), as the SDK's
// relationship guide documents it: a related-list container for incident/Default view and one entry for the
// implicit relationship x_incsim_suggestion.incident (the suggestion's reference to its incident), sorted by rank.
const incidentLists = Record({
    $id: Now.ID['rl_incident'],
    table: 'sys_ui_related_list',
    data: { name: 'incident', view: 'Default view' },
})

Record({
    $id: Now.ID['rl_incident_suggestions'],
    table: 'sys_ui_related_list_entry',
    data: { list_id: incidentLists, position: 0, related_list: 'x_incsim_suggestion.incident', order_by: 'rank' },
})

// The columns of that related list (sys_ui_list with parent incident), left to right.
List({
    table: 'x_incsim_suggestion',
    view: default_view,
    parent: 'incident',
    columns: ['rank', 'suggested', 'short_description', 'score', 'similar', 'threshold_calibrated', 'suggested_state',
        'close_code', 'close_notes', 'resolved_at', 'verdict', 'feedback_state'],
})

// The suggestions table's own list (System > incident-sim suggestions, or the related list's "View all").
List({
    table: 'x_incsim_suggestion',
    view: default_view,
    columns: ['incident', 'rank', 'suggested_number', 'short_description', 'score', 'dense', 'bm25', 'similar',
        'threshold', 'threshold_calibrated', 'threshold_target', 'model_version', 'asked_at', 'close_code',
        'resolved_at', 'verdict', 'verdict_by', 'feedback_state'],
})
