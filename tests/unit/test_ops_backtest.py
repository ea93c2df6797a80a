"""`restock backtest` rough edges (issue #18, 3): optional extra, default data, strict JSON, own score."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.backtest import BacktestOptions, run_backtest
from streams.cli import main

from .test_backtest import _write


def _strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_restocks_own_score_does_not_depend_on_the_baselines(tmp_path: Path) -> None:
    data = _write(tmp_path / "sales.csv", days=60)
    reports = [run_backtest(BacktestOptions(data=data, horizon=3, baselines=b, min_history=2,
                                            progress=False, refit_every=28, top=2))
               for b in ((), ("naive",), ("naive", "seasonal_naive"))]
    own = [r["metrics"]["restock_own"] for r in reports]
    assert own[0] == own[1] == own[2]
    assert len({r["metrics"]["restock_own_cells"] for r in reports}) == 1
    # the comparison table uses the common cells: fewer with seasonal naive (it needs a season first)
    assert reports[2]["metrics"]["cells"] < reports[0]["metrics"]["cells"] == reports[0]["metrics"][
        "restock_own_cells"]


def test_statsforecast_baselines_are_skipped_with_a_note_without_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "statsforecast", None)  # import fails as if not installed
    data = _write(tmp_path / "sales.csv", days=40)
    out = tmp_path / "r.json"
    report = run_backtest(BacktestOptions(data=data, horizon=3, min_history=14, progress=False,
                                          json_path=out))
    assert set(report["metrics"]["all"]) == {"restock", "naive", "seasonal_naive"}
    assert len(report["notes"]) == 4 and all("statsforecast" in n for n in report["notes"])
    saved = _strict(out.read_text())  # no NaN / Infinity tokens: valid JSON
    assert isinstance(saved, dict) and saved["notes"] == report["notes"]


def test_cli_backtest_without_data_in_an_install_says_what_to_pass(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    from streams import cli

    monkeypatch.setattr(cli, "DEFAULT_DATA", tmp_path / "absent.csv.gz")
    res = CliRunner().invoke(main, ["backtest", "--no-progress"])
    assert res.exit_code == 2 and "--data" in res.output and "timestamp, sku, quantity" in res.output


def test_cli_backtest_table_is_not_cut_when_piped(tmp_path: Path) -> None:
    data = _write(tmp_path / "sales.csv", days=40)
    res = CliRunner().invoke(main, ["backtest", "--data", str(data), "--horizon", "3", "--baselines",
                                    "naive,seasonal_naive", "--no-progress"])
    assert res.exit_code == 0, res.output
    header = next(line for line in res.output.splitlines() if "method" in line)
    for col in ("wape", "mae", "rmse", "mase", "bias", "coverage_q90", "coverage_q95"):
        assert col in header
    assert "restock on its own" in res.output
