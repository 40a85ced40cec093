"""The service watches its flag: the exact interval without scipy, the bounded crash-safe answer log, the alert
condition on a synthetic drift (and not on a stable stream), in Python and as promtool evaluates the rule, the
metrics and GET /admin/threshold."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from scipy.stats import beta

from conftest import ADMIN_KEY
from service.flag import AnswerLog, AnswerRecord, FileFeedbackStore, FlagWatch, Verdict, calibration_promise
from service.flag.stats import clopper_pearson
from service.metrics import Metrics

OBS = Path(__file__).resolve().parent.parent / "deploy" / "observability"
ALERT = "IncidentSimFlaggedShareAbovePromise"


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (18, 705), (50, 500), (1, 1), (2500, 5000)])
def test_clopper_pearson_matches_scipy(k: int, n: int) -> None:
    lo = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    hi = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    assert clopper_pearson(k, n, 0.95) == pytest.approx((lo, hi), abs=1e-9)
    assert clopper_pearson(0, 0) == (0.0, 1.0)


def answer(i: int, flagged: bool, number: str | None = None, model: str = "m1") -> AnswerRecord:
    best = 0.9 if flagged else 0.6
    return AnswerRecord(at=1_700_000_000.0 + i, number=number if number is not None else f"INC{i:07d}", best=best,
                        flagged=flagged, threshold=0.8, model_version=model, threshold_source="calibrated",
                        suggested=((f"INC9{i:06d}", best),))


def test_answer_log_is_bounded_restored_and_tolerates_a_torn_line(tmp_path: Path) -> None:
    log = AnswerLog(tmp_path, capacity=100)
    for i in range(350):
        log.record(answer(i, i % 3 == 0))
    lines = sum(len(p.read_text().splitlines()) for p in tmp_path.glob("*.jsonl"))
    assert lines <= 200  # two segments at most
    assert "text" not in (tmp_path / "answers.jsonl").read_text().splitlines()[0]
    # no close(): as after SIGKILL; then a write cut short
    with (tmp_path / "answers.jsonl").open("ab") as f:
        f.write(b'{"at": 1.0, "numb')
    again = AnswerLog(tmp_path, capacity=100)
    recent = again.recent()
    assert len(recent) == 100 and recent[-1] == answer(349, False) and recent[0] == answer(250, False)
    again.record(answer(350, True))
    assert AnswerLog(tmp_path, capacity=100).recent()[-1] == answer(350, True)
    assert set(json.loads((tmp_path / "answers.jsonl").read_text().splitlines()[0])) == {
        "at", "number", "best", "flagged", "threshold", "model_version", "threshold_source", "suggested"}


@dataclass
class FakeBundle:
    model_version: str = "m1"
    threshold: float = 0.8
    threshold_source: str = "calibrated"
    manifest: dict[str, Any] = field(default_factory=lambda: {"threshold": {
        "source": "calibrated", "unit": "incident_false_alarm", "target": 0.05, "confidence": 0.95,
        "test": {"false_alarm_rate": {"count": 4, "of": 900, "value": 0.0044},
                 "hit_rate": {"count": 30, "of": 100, "value": 0.3, "ci95": [0.21, 0.40]}}}})

    @property
    def threshold_target(self) -> dict[str, Any] | None:
        from indexing.bundle import threshold_target

        return threshold_target(self.manifest["threshold"])


def watch_for(tmp_path: Path, metrics: Metrics | None = None, window: int = 500) -> FlagWatch:
    return FlagWatch(lambda: FakeBundle(), AnswerLog(tmp_path / "flag", capacity=5000),  # type: ignore[arg-type,return-value]
                     FileFeedbackStore(tmp_path / "flag" / "feedback.jsonl"), window=window, metrics=metrics)


def test_the_promise_comes_from_the_calibration_report() -> None:
    promise = calibration_promise(FakeBundle())  # type: ignore[arg-type]
    assert promise is not None
    assert promise.duplicate_share == pytest.approx(0.1) and promise.flagged_share == pytest.approx(0.05 + 0.1 * 0.40)
    assert calibration_promise(FakeBundle(), duplicate_share=0.2).flagged_share == pytest.approx(  # type: ignore[arg-type,union-attr]
        0.05 + 0.2 * 0.40)
    uncalibrated = FakeBundle(manifest={"threshold": {"source": "default", "value": 0.8}})
    assert calibration_promise(uncalibrated) is None  # type: ignore[arg-type]


def test_a_drift_raises_the_alert_condition_and_a_stable_stream_does_not(tmp_path: Path) -> None:
    rng = random.Random(7)
    metrics = Metrics()
    watch = watch_for(tmp_path, metrics)
    promise = watch.promise()
    assert promise is not None  # 0.09
    # stable: flagged share at the promise's level (7 %), 2000 answers; checked every 50 answers
    for i in range(2000):
        watch.answers.record(answer(i, rng.random() < 0.07))
        if i % 50 == 49:
            assert not watch.alert(), (i, watch.share())
    # drift: the flagged share climbs to 25 % (SeaMonkey's later period)
    fired_at = None
    for i in range(2000, 4000):
        watch.answers.record(answer(i, rng.random() < 0.25))
        if fired_at is None and watch.alert():
            fired_at = i - 2000
    assert fired_at is not None and fired_at < 500, fired_at
    window = watch.share()
    assert window.answers == 500 and window.lower > promise.flagged_share
    exposition = metrics.registry.get_sample_value
    assert exposition("incident_sim_flagged_share_lower_ratio") == pytest.approx(window.lower)
    assert exposition("incident_sim_flag_promised_share_ratio") == pytest.approx(promise.flagged_share)
    assert exposition("incident_sim_flagged_share_answers") == 500


def test_a_retried_call_counts_once_and_other_models_do_not_count(tmp_path: Path) -> None:
    watch = watch_for(tmp_path, window=100)
    for i in range(50):
        watch.answers.record(answer(i, True, number="INC0000001"))  # ServiceNow retrying one incident
        watch.answers.record(answer(i, True, number=f"INC1{i:06d}", model="m0"))  # before the switch
    watch.answers.record(answer(99, False, number="INC0000002"))
    window = watch.share()
    assert (window.answers, window.flagged) == (2, 1)


@dataclass
class Hit:
    """A search result as the flag watch reads it (score, payload)."""

    score: float
    payload: dict[str, Any]
    point_id: str = "p"


def similar_answer(results: list[Hit], threshold: float, source: str) -> Any:
    from service.engine import SimilarAnswer

    return SimilarAnswer(results=results, threshold=threshold, threshold_source=source,  # type: ignore[arg-type]
                         threshold_target=None, model_version="m1", index_version="m1@1", truncated=False, exact=True)


def test_record_answer_feeds_the_counter_and_the_margin_histogram(tmp_path: Path) -> None:
    metrics = Metrics()
    watch = watch_for(tmp_path, metrics)
    for scores in ([0.85, 0.7], [0.79], []):
        ans = similar_answer([Hit(s, {"number": f"INC{s}"}) for s in scores], 0.8, "calibrated")
        watch.record_answer(ans, "INC0000042")
    get = metrics.registry.get_sample_value
    assert get("incident_sim_flag_answers_total", {"flagged": "true"}) == 1
    assert get("incident_sim_flag_answers_total", {"flagged": "false"}) == 2
    assert get("incident_sim_best_score_margin_count") == 2  # no result: no best score
    assert get("incident_sim_best_score_margin_bucket", {"le": "0.0"}) == 1
    assert get("incident_sim_best_score_margin_bucket", {"le": "0.05"}) == 2


def test_an_uncalibrated_answer_is_neither_flagged_nor_not(tmp_path: Path) -> None:
    metrics = Metrics()
    watch = watch_for(tmp_path, metrics)
    ans = similar_answer([Hit(0.95, {"number": "INC1"}), Hit(0.2, {"number": "INC2"})], 0.6, "uncalibrated_default")
    assert [ans.is_similar(r) for r in ans.results] == [None, None]  # type: ignore[arg-type]
    record = watch.record_answer(ans, "INC0000042")
    assert record.flagged is None
    get = metrics.registry.get_sample_value
    assert get("incident_sim_flag_answers_total", {"flagged": "none"}) == 1
    assert get("incident_sim_flag_answers_total", {"flagged": "true"}) == 0
    assert get("incident_sim_flag_answers_total", {"flagged": "false"}) == 0
    assert get("incident_sim_best_score_margin_count") == 0  # no margin to a threshold that decides nothing
    assert watch.share().answers == 0  # not in the flagged share either way
    watch.record_answer(replace(ans, threshold_source="calibrated"), "INC0000043")
    assert (watch.share().answers, watch.share().flagged) == (1, 1)  # a calibrated one of the same model counts
    assert watch.record_feedback("INC0000042", "INC1", Verdict.not_similar, "test")[0].flagged is None
    # the log keeps it undecided across a restart, and reads lines written before as undecided too
    assert AnswerLog(tmp_path / "flag").recent()[0].flagged is None
    legacy = AnswerRecord.from_dict({**record.to_dict(), "flagged": False})
    assert legacy.flagged is None
    calibrated = AnswerRecord.from_dict({**record.to_dict(), "flagged": False, "threshold_source": "calibrated"})
    assert calibrated.flagged is False


def promtool_case(series: dict[str, str], fires: bool, runbook: str = "") -> dict[str, Any]:
    summary = ("svc:8000 flags more answers than its calibration promised: the flagged share's lower bound is 15%")
    alerts = [{"exp_labels": {"severity": "ticket", "instance": "svc:8000", "job": "incident-sim"},
               "exp_annotations": {"summary": summary, "runbook": runbook}}] if fires else []
    return {"interval": "1m",
            "input_series": [{"series": f'{name}{{instance="svc:8000",job="incident-sim"}}', "values": values}
                             for name, values in series.items()],
            "alert_rule_test": [{"eval_time": "60m", "alertname": ALERT, "exp_alerts": alerts}]}


def test_promtool_fires_the_rule_on_drift_only(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install the Debian package 'prometheus' (.ci/run does)")
    rule = next(r for g in yaml.safe_load((OBS / "alerts.yml").read_text())["groups"] for r in g["rules"]
                if r["alert"] == ALERT)
    runbook = rule["annotations"]["runbook"]
    assert "#the-flag-flags-more-than-it-promised" in runbook
    assert "### The flag flags more than it promised" in (OBS / "README.md").read_text()
    shutil.copy(OBS / "alerts.yml", tmp_path / "alerts.yml")
    promised = "0.09x70"
    cases = [
        # the lower bound crosses the promise after 20 minutes and stays: fires 30 minutes later
        promtool_case({"incident_sim_flagged_share_lower_ratio": "0.05x20 0.15x50",
                       "incident_sim_flag_promised_share_ratio": promised,
                       "incident_sim_flagged_share_answers": "500x70"}, fires=True, runbook=runbook),
        # stable: the bound stays below the promise
        promtool_case({"incident_sim_flagged_share_lower_ratio": "0.05x70",
                       "incident_sim_flag_promised_share_ratio": promised,
                       "incident_sim_flagged_share_answers": "500x70"}, fires=False),
        # too few answers to say anything
        promtool_case({"incident_sim_flagged_share_lower_ratio": "0.15x70",
                       "incident_sim_flag_promised_share_ratio": promised,
                       "incident_sim_flagged_share_answers": "40x70"}, fires=False),
        # uncalibrated bundle: no promise (NaN), never fires
        promtool_case({"incident_sim_flagged_share_lower_ratio": "0.5x70",
                       "incident_sim_flag_promised_share_ratio": " ".join(["NaN"] * 71),
                       "incident_sim_flagged_share_answers": "500x70"}, fires=False),
    ]
    (tmp_path / "test.yml").write_text(yaml.safe_dump({"rule_files": ["alerts.yml"], "evaluation_interval": "1m",
                                                       "tests": cases}))
    r = subprocess.run([promtool, "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_admin_threshold_shows_the_whole_picture(live: httpx.Client) -> None:
    for i in range(4):
        assert live.post("/similar", json={"text": f"vpn certificate expired {i}", "exclude": [f"INC88{i}"]}
                         ).status_code == 200
    assert live.get("/admin/threshold").status_code == 403
    status = live.get("/admin/threshold", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert set(status) >= {"model_version", "threshold", "calibration", "live", "feedback", "last_recalibration"}
    # the fixture bundle is uncalibrated: its answers are logged but are in no flagged share (neither flags nor not)
    assert status["live"]["answers_logged"] >= 4 and status["live"]["answers"] == 0
    assert len(status["live"]["interval"]) == 2
    metrics = live.get("/metrics").text
    for name in ("incident_sim_flagged_share_ratio", "incident_sim_flagged_share_lower_ratio",
                 "incident_sim_flag_promised_share_ratio", "incident_sim_best_score_margin_bucket",
                 "incident_sim_flag_precision_ratio", 'incident_sim_flag_answers_total{flagged="true"}'):
        assert name in metrics, name
