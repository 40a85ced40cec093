import { RestMessage } from '@servicenow/sdk/core'

// One outbound REST message. The base URL and the incident number are Variable Substitutions declared on each
// method (a ${name} that is not declared is sent literally). Authentication is set per call from the properties
// x_incsim.auth_type / x_incsim.auth_profile (setAuthenticationProfile: basic or oauth2): no secret is in the app.
RestMessage({
    $id: Now.ID['rest_incident_sim'],
    name: 'incident-sim',
    endpoint: '${base_url}',
    description: 'incident-sim similar-incident service: /similar, incident push and delete, /feedback.',
    authenticationType: 'noAuthentication',
    functions: [
        {
            name: 'similar',
            httpMethod: 'POST',
            endpoint: '${base_url}/similar',
            headers: [
                { $id: Now.ID['fn_similar_ct'], name: 'Content-Type', value: 'application/json' },
                { $id: Now.ID['fn_similar_accept'], name: 'Accept', value: 'application/json' },
            ],
            variables: [
                { $id: Now.ID['fn_similar_base_url'], name: 'base_url' },
            ],
        },
        {
            name: 'put_incident',
            httpMethod: 'PUT',
            endpoint: '${base_url}/incidents/${number}',
            headers: [
                { $id: Now.ID['fn_put_incident_ct'], name: 'Content-Type', value: 'application/json' },
                { $id: Now.ID['fn_put_incident_accept'], name: 'Accept', value: 'application/json' },
            ],
            variables: [
                { $id: Now.ID['fn_put_incident_base_url'], name: 'base_url' },
                { $id: Now.ID['fn_put_incident_number'], name: 'number' },
            ],
        },
        {
            name: 'delete_incident',
            httpMethod: 'DELETE',
            endpoint: '${base_url}/incidents/${number}',
            headers: [
                { $id: Now.ID['fn_delete_incident_ct'], name: 'Content-Type', value: 'application/json' },
                { $id: Now.ID['fn_delete_incident_accept'], name: 'Accept', value: 'application/json' },
            ],
            variables: [
                { $id: Now.ID['fn_delete_incident_base_url'], name: 'base_url' },
                { $id: Now.ID['fn_delete_incident_number'], name: 'number' },
            ],
        },
        {
            name: 'feedback',
            httpMethod: 'POST',
            endpoint: '${base_url}/feedback',
            headers: [
                { $id: Now.ID['fn_feedback_ct'], name: 'Content-Type', value: 'application/json' },
                { $id: Now.ID['fn_feedback_accept'], name: 'Accept', value: 'application/json' },
            ],
            variables: [
                { $id: Now.ID['fn_feedback_base_url'], name: 'base_url' },
            ],
        },
    ],
})
