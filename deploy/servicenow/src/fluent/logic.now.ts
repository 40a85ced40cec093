import { BusinessRule, ScheduledScript, ScriptInclude, UiAction } from '@servicenow/sdk/core'

ScriptInclude({
    $id: Now.ID['si_client'],
    name: 'IncidentSimClient',
    apiName: 'x_incsim.IncidentSimClient',
    active: true,
    accessibleFrom: 'package_private',
    description: 'Every call to incident-sim: timeouts, authentication, retry queue, suggestions, feedback.',
    script: Now.include('../server/IncidentSimClient.server.js'),
})

ScriptInclude({
    $id: Now.ID['si_queue'],
    name: 'IncidentSimQueue',
    apiName: 'x_incsim.IncidentSimQueue',
    active: true,
    accessibleFrom: 'package_private',
    description: 'The retry queue (x_incsim_retry): queues failed calls, retries them with bounded back-off.',
    script: Now.include('../server/IncidentSimQueue.server.js'),
})

ScriptInclude({
    $id: Now.ID['si_suggestions'],
    name: 'IncidentSimSuggestions',
    apiName: 'x_incsim.IncidentSimSuggestions',
    active: true,
    accessibleFrom: 'package_private',
    description: 'Writes a /similar answer to x_incsim_suggestion (and the optional work note).',
    script: Now.include('../server/IncidentSimSuggestions.server.js'),
})

BusinessRule({
    $id: Now.ID['br_similar'],
    name: 'incident-sim: suggestions',
    table: 'incident',
    when: 'async',
    action: ['insert'],
    order: 200,
    active: true,
    condition: "gs.getProperty('x_incsim.similar.enabled', 'true') == 'true'",
    description: 'POST /similar for a new incident; suggestions go to x_incsim_suggestion, failures to the retry queue.',
    script: Now.include('../server/br_similar.server.js'),
})

BusinessRule({
    $id: Now.ID['br_push'],
    name: 'incident-sim: push incident',
    table: 'incident',
    when: 'async',
    action: ['insert', 'update'],
    order: 300,
    active: true,
    condition: 'new x_incsim.IncidentSimClient().shouldPush(current)',
    description: 'PUT /incidents/{number} when any field the service indexes changes; failures to the retry queue.',
    script: Now.include('../server/br_push.server.js'),
})

BusinessRule({
    $id: Now.ID['br_delete'],
    name: 'incident-sim: delete incident',
    table: 'incident',
    when: 'after',
    action: ['delete'],
    order: 300,
    active: true,
    condition: "gs.getProperty('x_incsim.delete.enabled', 'true') == 'true'",
    description: 'DELETE /incidents/{number} with a short timeout, answer checked (204/404); failures to the retry queue.',
    script: Now.include('../server/br_delete.server.js'),
})

ScheduledScript({
    $id: Now.ID['job_retry'],
    name: 'incident-sim: retry queue',
    active: true,
    frequency: 'periodically',
    executionInterval: { minutes: 1 },
    script: Now.include('../server/job_retry.server.js'),
})

UiAction({
    $id: Now.ID['ua_duplicate'],
    table: 'x_incsim_suggestion',
    name: 'Duplicate of this',
    actionName: 'x_incsim_duplicate',
    hint: 'Mark the incident as a duplicate of this suggestion and tell incident-sim (feedback: duplicate)',
    active: true,
    condition: 'current.suggested != ""',
    order: 100,
    showUpdate: true,
    showInsert: false,
    form: { showButton: true, showLink: false, showContextMenu: false, style: 'primary' },
    list: { showLink: true, showButton: false, showContextMenu: true, showListChoice: false, showBannerButton: false, showSaveWithFormButton: false },
    script: Now.include('../server/ua_duplicate.server.js'),
})

UiAction({
    $id: Now.ID['ua_not_similar'],
    table: 'x_incsim_suggestion',
    name: 'Not similar',
    actionName: 'x_incsim_not_similar',
    hint: 'Tell incident-sim this suggestion is wrong (feedback: not_similar)',
    active: true,
    order: 110,
    showUpdate: true,
    showInsert: false,
    form: { showButton: true, showLink: false, showContextMenu: false, style: 'primary' },
    list: { showLink: true, showButton: false, showContextMenu: true, showListChoice: false, showBannerButton: false, showSaveWithFormButton: false },
    script: Now.include('../server/ua_not_similar.server.js'),
})

UiAction({
    $id: Now.ID['ua_copy_resolution'],
    table: 'x_incsim_suggestion',
    name: 'Copy resolution',
    actionName: 'x_incsim_copy_resolution',
    hint: "Copy this suggestion's resolution (close code, close notes) into the incident",
    active: true,
    condition: 'current.close_notes != ""',
    order: 120,
    showUpdate: true,
    showInsert: false,
    form: { showButton: true, showLink: false, showContextMenu: false, style: 'primary' },
    list: { showLink: true, showButton: false, showContextMenu: true, showListChoice: false, showBannerButton: false, showSaveWithFormButton: false },
    script: Now.include('../server/ua_copy_resolution.server.js'),
})
