import { Property } from '@servicenow/sdk/core'

// Every setting the scripts read (gs.getProperty('x_incsim.<name>')). Admins change them in System Properties.
const admin = { read: ['admin'], write: ['admin'] }

Property({ $id: Now.ID['p_url'], name: 'x_incsim.service_url', type: 'string', value: 'https://incident-sim.example.com',
    description: 'Base URL of incident-sim (the proxy or Kubernetes Service in front of the replicas), no trailing slash.', roles: admin })
Property({ $id: Now.ID['p_auth_type'], name: 'x_incsim.auth_type', type: 'choicelist', choices: ['basic', 'oauth2'], value: 'basic',
    description: 'Outbound authentication: basic (Basic Auth Configuration: user = INCIDENT_SIM_BASIC_USER, password = an API key) or oauth2 (an OAuth Entity Profile, client credentials).', roles: admin })
Property({ $id: Now.ID['p_auth_profile'], name: 'x_incsim.auth_profile', type: 'string', value: '',
    description: 'sys_id of the sys_auth_profile_basic (basic) or oauth_entity_profile (oauth2) record; passed to RESTMessageV2.setAuthenticationProfile.', roles: admin })
Property({ $id: Now.ID['p_mid'], name: 'x_incsim.mid_server', type: 'string', value: '',
    description: 'MID server name, only when the service is not reachable from the instance. MID calls use executeAsync and wait at most 30 s; OAuth does not pass a MID (use basic).', roles: admin })
Property({ $id: Now.ID['p_top_k'], name: 'x_incsim.top_k', type: 'integer', value: 5,
    description: 'Suggestions asked for each new incident (1-50).', roles: admin })
Property({ $id: Now.ID['p_timeout'], name: 'x_incsim.timeout_ms', type: 'integer', value: 5000,
    description: 'HTTP timeout of /similar, push and feedback calls, in milliseconds (setHttpTimeout; the platform default is 175 s).', roles: admin })
Property({ $id: Now.ID['p_delete_timeout'], name: 'x_incsim.delete_timeout_ms', type: 'integer', value: 2000,
    description: 'HTTP timeout of the delete call, in milliseconds: it runs in the deleting transaction, so keep it short (a failure is queued).', roles: admin })
Property({ $id: Now.ID['p_retry_max'], name: 'x_incsim.retry.max_attempts', type: 'integer', value: 8,
    description: 'Attempts of a failed call (timeout, 429, 5xx) before its queue entry is marked failed.', roles: admin })
Property({ $id: Now.ID['p_retry_base'], name: 'x_incsim.retry.base_s', type: 'integer', value: 15,
    description: 'First retry delay in seconds; doubled on each attempt (never less than the Retry-After the service sent).', roles: admin })
Property({ $id: Now.ID['p_retry_cap'], name: 'x_incsim.retry.max_s', type: 'integer', value: 600,
    description: 'Longest retry delay in seconds.', roles: admin })
Property({ $id: Now.ID['p_retry_batch'], name: 'x_incsim.retry.batch', type: 'integer', value: 100,
    description: 'Queue entries the retry job works on per run (it runs every minute).', roles: admin })
Property({ $id: Now.ID['p_similar_on'], name: 'x_incsim.similar.enabled', type: 'boolean', value: true,
    description: 'Ask incident-sim for suggestions when an incident is created.', roles: admin })
Property({ $id: Now.ID['p_push_on'], name: 'x_incsim.push.enabled', type: 'boolean', value: true,
    description: 'Send created/updated incidents to incident-sim (PUT /incidents/{number}).', roles: admin })
Property({ $id: Now.ID['p_delete_on'], name: 'x_incsim.delete.enabled', type: 'boolean', value: true,
    description: 'Remove deleted incidents from incident-sim (DELETE /incidents/{number}).', roles: admin })
Property({ $id: Now.ID['p_note_on'], name: 'x_incsim.work_note.enabled', type: 'boolean', value: true,
    description: 'Also write a short work note naming the suggestions (the related list is always filled).', roles: admin })
Property({ $id: Now.ID['p_domain'], name: 'x_incsim.domain_scoping', type: 'choicelist', choices: ['auto', 'true', 'false'], value: 'auto',
    description: "Limit suggestions to the incident's domain (filters.sys_domain; sys_domain is always sent with every incident). auto: on for an incident whose domain is not global (an instance with domain separation), off for global ones; true: always (global too); false: never. Incidents indexed without sys_domain match no domain: push or sync them once after turning it on.", roles: admin })
Property({ $id: Now.ID['p_resolution'], name: 'x_incsim.resolution.enabled', type: 'boolean', value: true,
    description: "Ask incident-sim for each suggestion's resolution (include_resolution: close notes, close code, resolved at), shown in the suggestions list and copied by \"Copy resolution\".", roles: admin })
Property({ $id: Now.ID['p_dup_field'], name: 'x_incsim.duplicate_field', type: 'choicelist', choices: ['duplicate_of', 'parent_incident'], value: 'duplicate_of',
    description: 'Incident field that "Duplicate of this" sets (duplicate_of where the instance has it, else parent_incident).', roles: admin })
