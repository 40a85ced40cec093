import {
    BooleanColumn, ChoiceColumn, DateTimeColumn, DecimalColumn, IntegerColumn, MultiLineTextColumn, ReferenceColumn,
    StringColumn, Table,
} from '@servicenow/sdk/core'

// One row per suggestion incident-sim made for a new incident: shown as the "incident-sim suggestions" related list
// on the incident form (the `incident` reference), sorted by rank. Written by the async rule, never by
// current.update() on the incident.
export const x_incsim_suggestion = Table({
    name: 'x_incsim_suggestion',
    label: 'incident-sim suggestion',
    display: 'suggested_number',
    audit: false,
    schema: {
        incident: ReferenceColumn({ label: 'Incident', referenceTable: 'incident', mandatory: true }),
        suggested: ReferenceColumn({ label: 'Suggested incident', referenceTable: 'incident' }),
        suggested_number: StringColumn({ label: 'Suggested number', maxLength: 40 }),
        short_description: StringColumn({ label: 'Suggested short description', maxLength: 160 }),
        rank: IntegerColumn({ label: 'Rank' }),
        score: DecimalColumn({ label: 'Score' }),
        dense: DecimalColumn({ label: 'Dense (cosine)' }),
        bm25: DecimalColumn({ label: 'BM25 (normalised)' }),
        similar: BooleanColumn({ label: 'Similar (at or above the threshold)' }),
        threshold: DecimalColumn({ label: 'Threshold' }),
        threshold_calibrated: BooleanColumn({ label: 'Threshold calibrated' }),
        threshold_target: StringColumn({ label: 'Threshold target', maxLength: 100 }),
        model_version: StringColumn({ label: 'Model version', maxLength: 100 }),
        asked_at: DateTimeColumn({ label: 'Asked at' }),
        suggested_state: StringColumn({ label: 'Suggested incident state', maxLength: 40 }),
        close_code: StringColumn({ label: 'Resolution code', maxLength: 80 }),
        close_notes: MultiLineTextColumn({ label: 'Resolution notes', maxLength: 4000 }),
        resolved_at: DateTimeColumn({ label: 'Suggested incident resolved at' }),
        verdict: ChoiceColumn({ label: 'Verdict', choices: { duplicate: 'Duplicate', related: 'Related', not_similar: 'Not similar' } }),
        verdict_by: StringColumn({ label: 'Verdict by', maxLength: 100 }),
        verdict_at: DateTimeColumn({ label: 'Verdict at' }),
        feedback_state: ChoiceColumn({ label: 'Feedback', choices: { sent: 'Sent', queued: 'Queued for retry', failed: 'Failed' } }),
    },
    index: [{ element: 'incident', name: 'x_incsim_suggestion_incident', unique: false }],
})

// Calls that failed (timeout, 429 with Retry-After, 5xx, a network error): retried by the scheduled job
// "incident-sim: retry queue" with bounded back-off. Ops watch state/attempts/last_status here.
export const x_incsim_retry = Table({
    name: 'x_incsim_retry',
    label: 'incident-sim retry queue',
    display: 'number',
    schema: {
        operation: ChoiceColumn({ label: 'Operation', mandatory: true,
            choices: { similar: 'Suggestions (/similar)', push: 'Push (PUT)', delete: 'Delete', feedback: 'Feedback' } }),
        incident_sys_id: StringColumn({ label: 'Incident sys_id', maxLength: 32 }),
        number: StringColumn({ label: 'Incident number', maxLength: 40 }),
        payload: MultiLineTextColumn({ label: 'Payload (delete and feedback)', maxLength: 4000 }),
        state: ChoiceColumn({ label: 'State', mandatory: true,
            choices: { queued: 'Queued', done: 'Done', failed: 'Failed (gave up)', superseded: 'Superseded' } }),
        attempts: IntegerColumn({ label: 'Attempts' }),
        next_attempt: DateTimeColumn({ label: 'Next attempt' }),
        last_status: IntegerColumn({ label: 'Last HTTP status (0 = no answer)' }),
        retry_after_s: IntegerColumn({ label: 'Retry-After sent (s)' }),
        last_error: StringColumn({ label: 'Last error', maxLength: 1000 }),
    },
    index: [{ element: ['state', 'next_attempt'], name: 'x_incsim_retry_due', unique: false }],
})
