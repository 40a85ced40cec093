"""The analyzer and its options."""

from __future__ import annotations

import pytest

from indexing.lexical import Analyzer


def test_identifiers_kept_whole_and_split() -> None:
    tokens = Analyzer().tokens("ORA-1652 on srv-db01.corp.local, v2.3.1 and KB0012345 for the users")
    assert "ora-1652" in tokens and "1652" in tokens
    assert "srv-db01.corp.local" in tokens and "db01" in tokens and "corp" in tokens
    assert "v2.3.1" in tokens and "kb0012345" in tokens
    assert "the" not in tokens and "for" not in tokens and "and" not in tokens


def test_options_change_tokens_and_names_round_trip() -> None:
    text = "Printers failing, printing stopped on prn-fra01"
    assert Analyzer(stem=True).tokens(text)[:3] == ["printer", "fail", "print"]
    assert "prn-fra01" in Analyzer(stem=True).tokens(text)  # identifiers are never stemmed
    assert "fra01" not in Analyzer(split=False).tokens(text)
    assert "on" in Analyzer(stop=False).tokens(text)
    weighted = Analyzer(summary_weight=2).document_tokens("vpn down", "since morning")
    assert weighted.count("vpn") == 2 and weighted.count("morning") == 1
    for analyzer in (Analyzer(), Analyzer(stem=True, summary_weight=3), Analyzer(split=False, stop=False)):
        assert Analyzer.from_name(analyzer.name) == analyzer
    assert Analyzer().name == "incident-v1"
    with pytest.raises(ValueError, match="unknown analyzer option"):
        Analyzer.from_name("incident-v1+bogus")
    with pytest.raises(ValueError, match="unknown analyzer"):
        Analyzer.from_name("other-v9")
