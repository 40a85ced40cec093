// The Glide globals ServiceNow gives server scripts, typed from the @servicenow/glide declarations (pinned in
// package.json), so `npm run typecheck` (tsc --checkJs) checks src/server/*.js against them. The script includes
// (IncidentSimClient, IncidentSimSuggestions) are declared by their own files.
import type { GlideDateTime as GDT, GlideRecord as GR, gs as GS, RESTMessageV2, RESTResponseV2 } from '@servicenow/glide'

declare global {
    const gs: typeof GS
    const GlideRecord: typeof GR
    type GlideRecord = GR
    const GlideDateTime: typeof GDT
    const sn_ws: { RESTMessageV2: typeof RESTMessageV2, RESTResponseV2: typeof RESTResponseV2 }
    /** Prototype.js-style Class.create() of server-side script includes. */
    const Class: { create(): any }
    /** Business rules and UI actions: the record being worked on (and, in rules, its values before). */
    const current: GR
    const previous: GR
    /** UI actions: where to go afterwards. */
    const action: { setRedirectURL(target: GR | string): void }
}
