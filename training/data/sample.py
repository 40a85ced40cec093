"""Seeded generator of ServiceNow-shaped incidents with ground-truth links.

Each *problem* (one root cause on one configuration item) yields a cluster of incidents written by
different reporters in their own words: paraphrases, abbreviations, typos, hostnames and error
codes. Hard negatives come for free and on purpose: every archetype has siblings with the same
category, subcategory and wording style but a different cause, and monitoring alerts share one
template across unrelated hosts. Links: `problem_id` for every member of a multi-incident cluster,
`duplicate_of` (the cluster's first incident) for some of them."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Archetype:
    key: str
    category: str
    subcategory: str
    group: str
    ci: str  # cmdb_ci pattern with {host}
    shorts: tuple[str, ...]
    details: tuple[str, ...]
    fix: str


# {host} {code} {user} {app} {ver} {kb} {n} are filled per problem (host/code/app/ver/kb) or per incident.
ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("vpn-cert", "Network", "VPN", "Network Operations", "vpn-gw-{host}",
              ("VPN connection fails with certificate error", "cannot connect to vpn - cert expired?",
               "GlobalProtect says certificate not valid", "VPN drops immediately, error {code}",
               "remote access broken: certificate validation failed on {host}"),
              ("Since this morning the VPN client refuses to connect. Message: 'The server certificate is "
               "not valid ({code})'. Gateway vpn-gw-{host}.", "Users working from home report the VPN "
               "handshake fails. Client log shows {code} certificate chain incomplete on vpn-gw-{host}.",
               "tried reboot, reinstall of the client, still same. error {code}. pls help, working remote today"),
              "Renewed the expired intermediate certificate on vpn-gw-{host}."),
    Archetype("vpn-mfa", "Network", "VPN", "Network Operations", "vpn-gw-{host}",
              ("VPN login stuck waiting for MFA push", "no MFA prompt when connecting to VPN",
               "VPN asks for second factor but phone never gets notification", "vpn auth timeout {code}"),
              ("Connecting to the VPN, the client waits for the authenticator push that never arrives and "
               "times out with {code}.", "MFA push for VPN not delivered since {ver} rollout; error {code} "
               "after 60s on vpn-gw-{host}.", "cant login vpn, the app on my phone doesnt ring. code {code}"),
              "RADIUS proxy to the MFA provider restarted; queue was stuck."),
    Archetype("vpn-split", "Network", "VPN", "Network Operations", "vpn-gw-{host}",
              ("VPN connected but internal sites not reachable", "on VPN cannot open intranet",
               "VPN up, no route to 10.x networks", "after connecting VPN only internet works"),
              ("The VPN shows connected yet internal hosts like {host}.corp.local time out. Split tunnel "
               "routes seem missing.", "Connected via vpn-gw-{host} but intranet and {app} unreachable, "
               "tracert dies at the gateway.", "vpn says connected but nothing internal loads, {app} too"),
              "Pushed the missing split-tunnel route set to vpn-gw-{host}."),
    Archetype("db-conn-pool", "Database", "Oracle", "DBA Team", "db-{host}",
              ("{app} slow, database connection pool exhausted", "ORA-{code} errors in {app}",
               "{app} hangs: cannot get a db connection", "too many sessions on db-{host}"),
              ("{app} requests time out. Logs show 'Timeout waiting for connection from pool' and ORA-{code} "
               "against db-{host}.", "Since {ver} deploy the {app} connection pool maxes out at 200 and "
               "users see errors ORA-{code}.", "app {app} super slow and throws db errors ORA-{code}, db-{host}"),
              "Fixed connection leak in {app} {ver}; recycled pool on db-{host}."),
    Archetype("db-tablespace", "Database", "Oracle", "DBA Team", "db-{host}",
              ("Tablespace full on db-{host}", "ORA-{code}: unable to extend tablespace",
               "{app} inserts failing, tablespace USERS 100%", "db-{host} out of space for {app} data"),
              ("Batch jobs of {app} fail with ORA-{code} unable to extend table in tablespace USERS on "
               "db-{host}.", "Monitoring shows tablespace at 100% on db-{host}; {app} writes fail ORA-{code}.",
               "inserts in {app} broken, error says cannot extend, ORA-{code}"),
              "Added datafile to the tablespace on db-{host}; enabled autoextend."),
    Archetype("db-replication", "Database", "PostgreSQL", "DBA Team", "pg-{host}",
              ("Replication lag on pg-{host} growing", "read replica out of date for {app}",
               "{app} reports show stale data, replica behind", "WAL replay stalled on pg-{host}"),
              ("Replica pg-{host} is {n} minutes behind primary; {app} dashboards show old numbers.",
               "pg_stat_replication shows replay lag increasing on pg-{host}, {app} reads stale rows.",
               "reports in {app} are missing todays data, someone said the replica is behind"),
              "Replication slot was blocked by a long transaction; killed it on pg-{host}."),
    Archetype("mail-queue", "Email", "Exchange", "Messaging Team", "mx-{host}",
              ("Outgoing emails stuck in outbox", "external mail not delivered, queue growing on mx-{host}",
               "emails to customers bounce with {code}", "mail delay > 1h"),
              ("Mails to external domains stay in the outbox; NDR with {code} from mx-{host}.",
               "Transport queue on mx-{host} has {n} messages waiting; delivery error {code}.",
               "my emails to clients dont go out since morning, got bounce {code}"),
              "Smart host credentials rotated; updated connector on mx-{host}."),
    Archetype("mail-mailbox-full", "Email", "Exchange", "Messaging Team", "mx-{host}",
              ("Mailbox full, cannot send", "Outlook says mailbox quota exceeded",
               "cannot receive emails, mailbox over limit", "quota warning {code} in Outlook"),
              ("User {user} cannot send or receive; Outlook reports mailbox size over quota ({code}).",
               "Mailbox of {user} hit the 50GB limit; incoming mail bounced with {code}.",
               "outlook keeps saying my mailbox is full, i deleted stuff but still {code}"),
              "Enabled archive mailbox for {user}."),
    Archetype("sso-saml", "Access", "SSO", "Identity Team", "idp-{host}",
              ("SSO login to {app} fails with SAML error", "{app}: invalid SAML response",
               "cannot sign in to {app} via single sign-on", "SAML assertion expired error in {app}"),
              ("Users get 'Invalid SAML response ({code})' when logging into {app} through idp-{host}.",
               "Since {ver} the SSO redirect to {app} ends with error {code}; signing certificate mismatch.",
               "sso to {app} broken for whole team, error {code}"),
              "Updated the IdP signing certificate in {app} SAML config."),
    Archetype("ad-lockout", "Access", "Active Directory", "Identity Team", "dc-{host}",
              ("Account keeps getting locked out", "user {user} locked out repeatedly",
               "AD account lockout every few minutes", "cannot login, account locked {code}"),
              ("{user} is locked out every 10 minutes; event {code} on dc-{host} shows bad password from an "
               "old mobile device.", "Repeated lockouts for {user}, source dc-{host}, event id {code}.",
               "my account locks again and again after pwd change"),
              "Removed stale credentials from {user}'s phone mail profile."),
    Archetype("ad-pwd-reset", "Access", "Active Directory", "Service Desk", "dc-{host}",
              ("Password reset request", "forgot password, need reset", "pwd expired cannot login",
               "please reset my password"),
              ("User {user} forgot the password and needs a reset.", "{user} password expired while on "
               "leave, cannot log in to reset it.", "pls reset pwd for {user}"),
              "Password reset, user informed."),
    Archetype("disk-full", "Infrastructure", "Server", "Unix Operations", "{host}",
              ("Disk space critical on {host}", "/var full on {host}", "{app} crashed: no space left on device",
               "filesystem 98% on {host}"),
              ("Filesystem /var on {host} at 98%, {app} logs not rotating; errors 'No space left on device'.",
               "{host}: disk usage alert, /var/log/{app} grew {n} GB overnight.",
               "server {host} full, app {app} died, says no space"),
              "Fixed logrotate config for {app} on {host}; cleaned old logs."),
    Archetype("cert-expiry-web", "Infrastructure", "Web", "Web Operations", "lb-{host}",
              ("{app} website shows certificate expired", "browser warning: NET::ERR_CERT_DATE_INVALID on {app}",
               "https to {app} broken, cert expired", "SSL error on {app} portal"),
              ("Customers report an expired certificate on the {app} portal behind lb-{host}.",
               "TLS certificate for {app} expired today; lb-{host} still serves the old one.",
               "{app} gives red warning page in chrome about certificate"),
              "Installed the renewed certificate on lb-{host}."),
    Archetype("printer", "Hardware", "Printer", "Desktop Support", "prn-{host}",
              ("Printer on floor {n} not printing", "print jobs stuck in queue prn-{host}",
               "printer offline", "cannot print, error {code}"),
              ("Printer prn-{host} shows offline, jobs stuck in queue with {code}.",
               "Nobody on floor {n} can print to prn-{host}; spooler shows error {code}.",
               "printer doesnt work again, queue full"),
              "Restarted spooler and cleared stuck jobs for prn-{host}."),
    Archetype("laptop-bsod", "Hardware", "Laptop", "Desktop Support", "lt-{host}",
              ("Laptop blue screen {code}", "BSOD after update", "laptop crashes with {code}",
               "computer restarts randomly, blue screen"),
              ("Laptop lt-{host} crashes with stop code {code} after the {ver} driver update.",
               "Blue screen {code} several times a day on lt-{host} since update {ver}.",
               "my laptop keeps crashing blue screen {code}"),
              "Rolled back display driver {ver} on lt-{host}."),
    Archetype("k8s-crashloop", "Application", "Kubernetes", "Platform Team", "k8s-{host}",
              ("{app} pods in CrashLoopBackOff", "{app} down after deploy {ver}", "pods restarting {app}",
               "{app} 503 errors, pods not ready"),
              ("After deploying {app} {ver} to k8s-{host}, pods go CrashLoopBackOff: exit code {code}.",
               "{app} returns 503; kubectl shows restarts > {n}, OOMKilled, cluster k8s-{host}.",
               "{app} not working since release {ver}, pods keep restarting"),
              "Rolled back {app} to previous release; memory limit raised."),
    Archetype("k8s-image-pull", "Application", "Kubernetes", "Platform Team", "k8s-{host}",
              ("{app} ImagePullBackOff", "cannot pull image for {app}", "{app} deploy stuck, image pull error",
               "registry auth failure for {app}"),
              ("Deployment of {app} {ver} on k8s-{host} stuck in ImagePullBackOff: unauthorized {code}.",
               "Pods for {app} cannot pull from registry, error {code}; pull secret expired?",
               "deploy of {app} hangs, image cant be downloaded"),
              "Rotated the registry pull secret on k8s-{host}."),
    Archetype("app-login-slow", "Application", "Web App", "App Support", "{app}",
              ("{app} login very slow", "{app} takes minutes to load after login", "{app} performance degraded",
               "{app} timeouts {code}"),
              ("Logging into {app} takes more than 60s; API gateway returns {code} sometimes.",
               "{app} is slow for all users since {ver}; search page times out with {code}.",
               "{app} super slow today, cant work"),
              "Cache node for {app} restarted; hit ratio recovered."),
)

ALERT_ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("alert-cpu", "Monitoring", "Alert", "Unix Operations", "{host}",
              ("[ALERT] CPU utilization above 95% on {host}",),
              ("Monitoring alert: CPU utilization on {host} is {n}% (threshold 95%) for 15 minutes. "
               "Check ID {code}.",),
              "Runaway {app} process killed on {host}."),
    Archetype("alert-mem", "Monitoring", "Alert", "Unix Operations", "{host}",
              ("[ALERT] Memory utilization above 90% on {host}",),
              ("Monitoring alert: memory utilization on {host} is {n}% (threshold 90%) for 15 minutes. "
               "Check ID {code}.",),
              "{app} heap leak; service restarted on {host}."),
    Archetype("alert-ping", "Monitoring", "Alert", "Network Operations", "{host}",
              ("[ALERT] Host {host} not responding to ping",),
              ("Monitoring alert: host {host} failed {n} consecutive ICMP checks. Check ID {code}.",),
              "Switch port for {host} re-enabled."),
)

APPS = ("payroll", "crm", "sap-fi", "jira", "confluence", "billing", "hr-portal", "webshop", "erp", "wiki",
        "timesheet", "salesforce", "datalake", "reporting")
FIRST = ("anna", "ben", "carla", "dev", "emma", "farid", "greta", "hiro", "ines", "jon", "kai", "lena", "mo")
LAST = ("smith", "garcia", "muller", "rossi", "khan", "novak", "silva", "ito", "berg", "dubois")
ABBREV = {"cannot": "cant", "database": "db", "password": "pwd", "please": "pls", "connection": "conn",
          "server": "srv", "application": "app", "error": "err", "message": "msg", "because": "bc",
          "internal": "int", "users": "ppl", "minutes": "mins", "certificate": "cert"}
OPENERS = ("", "", "", "Hi team, ", "Hello, ", "URGENT: ", "Reported by phone: ", "User called: ")
CLOSERS = ("", "", "", " Thanks.", " Please advise.", " Business impact: high.", " Workaround: none.")


def _host(rng: random.Random) -> str:
    return f"{rng.choice(('srv', 'app', 'web', 'db', 'fra', 'ams', 'nyc'))}{rng.randint(1, 99):02d}" + rng.choice(
        ("", "", "-prd", "-stg", ".corp.local"))


def _code(rng: random.Random, archetype: Archetype) -> str:
    if archetype.category == "Database":
        return f"{rng.choice((1652, 4031, 12519, 18, 20, 1654, 257))}"
    if archetype.subcategory in ("Laptop",):
        return rng.choice(("0x0000007E", "0x00000050", "0x0000003B", "0x000000D1"))
    return rng.choice(("E", "ERR-", "0x", "")) + f"{rng.randint(100, 99999)}"


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) > 4 and w.isalpha():
        j = rng.randrange(1, len(w) - 2)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _reporter_voice(rng: random.Random, text: str) -> str:
    """Different people write the same thing differently."""
    if rng.random() < 0.35:
        for word, short in ABBREV.items():
            if word in text and rng.random() < 0.6:
                text = text.replace(word, short)
    if rng.random() < 0.3:
        text = _typo(rng, text)
    if rng.random() < 0.2:
        text = text.lower()
    return text


def _fill(template: str, slots: dict[str, Any]) -> str:
    return template.format(**slots)


class SampleGenerator:
    def __init__(self, seed: int = 7, start: datetime | None = None, days: int = 365) -> None:
        self.rng = random.Random(seed)
        self.start = start or datetime(2025, 1, 1, tzinfo=UTC)
        self.days = days

    def generate(self, n: int = 5000) -> list[dict[str, Any]]:
        rng = self.rng
        rows: list[dict[str, Any]] = []
        problem_seq = 0
        while len(rows) < n:
            alert = rng.random() < 0.15
            archetype = rng.choice(ALERT_ARCHETYPES if alert else ARCHETYPES)
            # cluster sizes: many singletons, some bursts (one outage -> many reports)
            size = rng.choice((1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 12))
            size = min(size, n - len(rows))
            slots = {"host": _host(rng), "code": _code(rng, archetype), "app": rng.choice(APPS),
                     "ver": f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
                     "kb": f"KB{rng.randint(10000, 99999):07d}"}
            problem_id = None
            if size > 1:
                problem_seq += 1
                problem_id = f"PRB{problem_seq:07d}"
            t0 = self.start + timedelta(minutes=rng.randint(0, self.days * 24 * 60))
            for member in range(size):
                opened = t0 + timedelta(minutes=rng.randint(0, 72 * 60) if member else 0)
                incident_slots = {**slots, "user": f"{rng.choice(FIRST)}.{rng.choice(LAST)}",
                                  "n": rng.randint(2, 99) if not alert else rng.randint(91, 100)}
                short = _fill(rng.choice(archetype.shorts), incident_slots)
                desc = _fill(rng.choice(archetype.details), incident_slots)
                if not alert:
                    short = _reporter_voice(rng, short)
                    desc = rng.choice(OPENERS) + _reporter_voice(rng, desc) + rng.choice(CLOSERS)
                row = {
                    "sys_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                    "short_description": short,
                    "description": desc,
                    "category": archetype.category,
                    "subcategory": archetype.subcategory,
                    "cmdb_ci": _fill(archetype.ci, incident_slots),
                    "assignment_group": archetype.group,
                    "opened_at": opened,
                    "resolved_at": opened + timedelta(hours=rng.randint(1, 96)),
                    "close_notes": _fill(archetype.fix, incident_slots),
                    "problem_id": problem_id,
                    "archetype": archetype.key,
                    "_cluster_first": member == 0,
                }
                rows.append(row)
                if member == 0:
                    row["_cluster_key"] = id(row)
                    first_row = row
                else:
                    row["_cluster_key"] = first_row["_cluster_key"]
        rows.sort(key=lambda r: r["opened_at"])
        firsts: dict[int, str] = {}
        out = []
        for seq, row in enumerate(rows, start=1):
            number = f"INC{seq + 10000:07d}"
            key = row.pop("_cluster_key")
            row.pop("_cluster_first")
            duplicate_of = None
            if key in firsts:
                if self.rng.random() < 0.5:
                    duplicate_of = firsts[key]
            else:
                firsts[key] = number
            out.append({
                "number": number,
                **{k: v for k, v in row.items() if k != "archetype"},
                "opened_at": row["opened_at"].strftime("%Y-%m-%d %H:%M:%S"),
                "resolved_at": row["resolved_at"].strftime("%Y-%m-%d %H:%M:%S"),
                "duplicate_of": duplicate_of,
                # no random draw here, so every other field stays what the seed gave before `state` existed
                "state": "Resolved" if seq > 0.95 * len(rows) else "Closed",
            })
        return out


def generate_incidents(n: int = 5000, seed: int = 7) -> list[dict[str, Any]]:
    return SampleGenerator(seed=seed).generate(n)


def write_incidents(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write as a ServiceNow Table API body (`{"result": [...]}`), the shape the loader reads."""
    from indexing.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"result": rows}, indent=1))  # never a half-written file to load later
    return path


def parity_texts(n: int = 256, seed: int = 11) -> Iterator[str]:
    """A fixed sample of incident texts for encoder parity checks (short and long ones)."""
    for row in generate_incidents(n, seed=seed):
        yield f"{row['short_description']}\n{row['description']}"
