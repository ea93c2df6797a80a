from __future__ import annotations

import gzip
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from streams.datasets import (
    NON_PRODUCT_CODES,
    CleaningReport,
    Dataset,
    SaleRow,
    demand_matrix,
    detect_format,
    load,
    load_generic,
    load_online_retail,
    period_delta,
    period_floor,
    season_length,
)

ROOT = Path(__file__).resolve().parents[2]
ONLINE_RETAIL = ROOT / "data" / "online_retail" / "online_retail_2010-12-01_2011-12-09.csv.gz"
DATA = ROOT / "tests" / "data"
ROWS_IN_FILE = 541_909


def _is_non_product(code: str) -> bool:
    return code in NON_PRODUCT_CODES or code.startswith(("GIFT_0001_", "DCGS"))


# ------------------------------------------------------------------------------------------------
# the real Online Retail file (loaded twice per session: full, and windowed top-50)
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def retail() -> Dataset:
    return load_online_retail(ONLINE_RETAIL)


@pytest.fixture(scope="module")
def retail_top50_june() -> Dataset:
    return load(ONLINE_RETAIL, skus=50, start=date(2011, 6, 1), end=date(2011, 6, 30))


def test_online_retail_every_row_accounted_for(retail: Dataset) -> None:
    rep = retail.report
    assert rep.rows_read == ROWS_IN_FILE
    assert rep.accounted() == ROWS_IN_FILE
    d = rep.as_dict()
    assert d["rows_kept"] + sum(d[k] for k in (
        "cancellations", "stock_adjustments", "bad_debt", "zero_price", "non_product",
        "duplicates", "invalid", "zero_quantity", "cancelled_orders", "outside_window",
        "not_selected")) == ROWS_IN_FILE
    # published quirks (data/online_retail/README.md): exact duplicates are found first
    assert rep.duplicates == 5_268
    assert rep.bad_debt == 3  # A563185..A563187
    assert rep.invalid == 0 and rep.outside_window == 0 and rep.not_selected == 0
    # orders voided by a same-customer/SKU/quantity cancellation within 1 h (data-entry errors)
    assert rep.cancelled_orders == 430
    assert not any(r.sku == "23843" for r in retail.sales)            # 80,995 units, voided
    assert max(r.quantity for r in retail.sales if r.sku == "23166") < 74_215
    # every cleaning reason actually fires on the real data
    assert rep.cancellations > 8_000 and rep.stock_adjustments > 1_000
    assert rep.zero_price > 1_000 and rep.non_product > 2_000
    assert rep.rows_kept == len(retail.sales) and rep.cancellations == len(retail.returns)
    assert rep.skus_kept == len({r.sku for r in retail.sales})


def test_online_retail_sales_are_clean_sorted_utc(retail: Dataset) -> None:
    sales = retail.sales
    assert all(r.quantity > 0 for r in sales)
    assert all(r.unit_price is not None and r.unit_price > 0 for r in sales)
    assert not any(_is_non_product(r.sku) for r in sales)
    assert all(r.sku == r.sku.upper() for r in sales)
    assert not any(r.order_id.startswith(("C", "A")) for r in sales)
    assert all(r.occurred_at.utcoffset() == timedelta(0) for r in sales)
    assert all(r.location == "UK" and r.key == f"{r.sku}@UK" for r in sales)
    keys = [(r.occurred_at, r.order_id, r.sku) for r in sales]
    assert keys == sorted(keys)
    assert all(r.quantity > 0 and r.order_id.startswith("C") for r in retail.returns)
    assert sales[0].occurred_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)  # GMT: no shift


def test_online_retail_summer_time_converted(retail: Dataset) -> None:
    # 2011-06-01 is in British Summer Time (UTC+1): local 07:xx..20:xx -> UTC 06:xx..19:xx
    june1 = [r for r in retail.sales if r.occurred_at.date() == date(2011, 6, 1)]
    assert june1
    first = min(r.occurred_at for r in june1)
    raw_first = "2011-06-01 07:37:00"  # first invoice line of that day in the raw file (local)
    assert first == datetime.fromisoformat(raw_first).replace(tzinfo=UTC) - timedelta(hours=1)


def test_online_retail_summer_time_exact(tmp_path: Path) -> None:
    f = tmp_path / "or.csv"
    f.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "570001,22423,REGENCY CAKESTAND,2,2011-06-01 10:00:00,12.75,17850.0,United Kingdom\n"
        "570002,22423,REGENCY CAKESTAND,1,2011-01-10 10:00:00,12.75,,United Kingdom\n"
    )
    ds = load(f)  # auto-detected
    assert ds.fmt == "online-retail"
    by_order = {r.order_id: r for r in ds.sales}
    assert by_order["570001"].occurred_at == datetime(2011, 6, 1, 9, 0, tzinfo=UTC)  # BST
    assert by_order["570002"].occurred_at == datetime(2011, 1, 10, 10, 0, tzinfo=UTC)  # GMT
    assert by_order["570001"].customer_id == "17850" and by_order["570002"].customer_id is None


def test_online_retail_rules_on_synthetic_rows(tmp_path: Path) -> None:
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    rows = [
        "536365,85123a,HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom",   # kept, upper-cased
        "536365,85123a,HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom",   # duplicate
        "C536379,85123A,HEART,-2,2010-12-01 09:41:00,2.55,17850,United Kingdom",  # cancellation
        "C536380,D,Discount,-1,2010-12-01 09:41:00,27.5,14527,United Kingdom",    # non-product
        "536381,POST,POSTAGE,3,2010-12-01 09:45:00,18.0,12583,France",           # non-product
        "536382,gift_0001_10,VOUCHER,1,2010-12-01 09:45:00,8.5,,United Kingdom",  # non-product
        "536383,DCGS0003,BOXED,1,2010-12-01 09:45:00,2.5,,United Kingdom",        # non-product
        "536384,22139,DAMAGED,-12,2010-12-01 10:00:00,0,,United Kingdom",        # stock adj.
        "536385,22140,FREE,5,2010-12-01 10:00:00,0,,United Kingdom",             # zero price
        "A563185,B,Adjust bad debt,1,2011-08-12 14:50:00,11062.06,,United Kingdom",  # bad debt
        "536386,22141,BROKEN,x,2010-12-01 10:00:00,1.0,,United Kingdom",         # invalid qty
        "536387,22142,BROKEN,1,2010-13-01 10:00:00,1.0,,United Kingdom",         # invalid date
        "536388,22143,SHORT,1,2010-12-01 10:00:00",                              # invalid width
    ]
    f = tmp_path / "or.csv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(header + "\n".join(rows) + "\n")
    ds = load_online_retail(f, location="WH1")
    rep = ds.report
    assert (rep.rows_read, rep.rows_kept, rep.duplicates, rep.cancellations, rep.non_product,
            rep.stock_adjustments, rep.zero_price, rep.bad_debt, rep.invalid) == (
                13, 1, 1, 1, 4, 1, 1, 1, 3)
    assert rep.accounted() == rep.rows_read
    (sale,) = ds.sales
    assert (sale.sku, sale.location, sale.quantity, sale.unit_price, sale.key) == (
        "85123A", "WH1", 6, 2.55, "85123A@WH1")
    (ret,) = ds.returns
    assert (ret.sku, ret.quantity, ret.order_id, ret.reason) == (
        "85123A", 2, "C536379", "cancelled")


def test_online_retail_cancelled_within_window_voids_the_order(tmp_path: Path) -> None:
    f = tmp_path / "or.csv"
    f.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "541431,23166,JAR,74215,2011-01-18 10:01:00,1.04,12346,United Kingdom\n"
        "541432,23166,JAR,12,2011-01-18 10:05:00,1.04,12346,United Kingdom\n"
        "C541433,23166,JAR,-74215,2011-01-18 10:17:00,1.04,12346,United Kingdom\n"
        "541500,22423,CAKESTAND,2,2011-01-18 08:00:00,12.75,17850,United Kingdom\n"
        "C541501,22423,CAKESTAND,-2,2011-01-18 11:30:00,12.75,17850,United Kingdom\n"
    )
    ds = load_online_retail(f)
    # 74,215 cancelled 16 min later by the same customer: voided; the 22423 cancellation comes
    # 3.5 h after its order (outside the 1 h window): the order stays demand
    assert sorted((r.sku, r.quantity) for r in ds.sales) == [("22423", 2), ("23166", 12)]
    assert ds.report.cancelled_orders == 1 and len(ds.returns) == 2
    assert ds.report.accounted() == 5
    keep_all = load_online_retail(f, cancel_window=None)
    assert len(keep_all.sales) == 3 and keep_all.report.cancelled_orders == 0


def test_online_retail_top50_and_window(retail_top50_june: Dataset, retail: Dataset) -> None:
    ds = retail_top50_june
    assert ds.report.skus_kept == 50 and len({r.sku for r in ds.sales}) == 50
    assert ds.report.accounted() == ROWS_IN_FILE
    assert all(date(2011, 6, 1) <= r.occurred_at.date() <= date(2011, 6, 30) for r in ds.sales)
    assert all(date(2011, 6, 1) <= r.occurred_at.date() <= date(2011, 6, 30) for r in ds.returns)
    # the 50 kept are the 50 largest by units in the window (ties by code) of the full cleaning
    units: dict[str, int] = {}
    for r in retail.sales:
        if date(2011, 6, 1) <= r.occurred_at.date() <= date(2011, 6, 30):
            units[r.sku] = units.get(r.sku, 0) + r.quantity
    expected = sorted(units, key=lambda k: (-units[k], k))[:50]
    assert {r.sku for r in ds.sales} == set(expected)
    assert {r.sku for r in ds.returns} <= set(expected)


def test_online_retail_demand_matrix_daily(retail: Dataset) -> None:
    dm = demand_matrix(retail, "D")
    assert dm.y.shape == (retail.report.skus_kept, len(dm.period_starts))
    assert dm.period_starts[0] == datetime(2010, 12, 1, tzinfo=UTC)
    assert dm.period_starts[-1] == datetime(2011, 12, 9, tzinfo=UTC)
    assert dm.y.sum() == sum(r.quantity for r in retail.sales)
    # README: about 81% of product-days over all calendar days have zero sales
    assert 0.78 < float((dm.y == 0).mean()) < 0.84
    rows = np.arange(len(dm.keys))
    assert np.all(dm.y[rows, dm.first_period] > 0)
    assert all(dm.y[i, : dm.first_period[i]].sum() == 0 for i in rows)


# ------------------------------------------------------------------------------------------------
# generic CSV
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["generic_small.csv", "generic_small.csv.gz"])
def test_generic_small(name: str) -> None:
    ds = load(DATA / name)
    assert ds.fmt == "generic"
    rep = ds.report
    # 13 data rows: 4 kept (lines 2, 3, 4, 14), 1 return (line 5), 1 zero quantity (6),
    # 6 invalid (7 date, 8 fractional qty, 9 promo, 10 empty sku, 11 month 13, 13 covariate),
    # 1 zero price (12)
    assert (rep.rows_read, rep.rows_kept, rep.cancellations, rep.zero_quantity, rep.invalid,
            rep.zero_price) == (13, 4, 1, 1, 6, 1)
    assert rep.accounted() == 13
    s = {r.order_id: r for r in ds.sales}
    assert set(s) == {"generic_small-2", "generic_small-3", "generic_small-4", "generic_small-14"}
    a = s["generic_small-2"]
    assert a.occurred_at == datetime(2024, 3, 4, tzinfo=UTC)  # date only = 00:00 UTC
    assert (a.key, a.quantity, a.unit_price, a.promo) == ("A1@store1", 3, 2.5, True)
    assert a.extra == (("x_price_ratio", 0.9), ("x_temp", 12.5))  # sorted by column name
    b = s["generic_small-3"]
    assert b.occurred_at == datetime(2024, 3, 4, 10, 30, tzinfo=UTC)  # naive = UTC
    assert (b.location, b.promo, b.extra) == ("default", False, (("x_price_ratio", 1.0),))
    c = s["generic_small-4"]
    assert c.occurred_at == datetime(2024, 3, 5, 9, 0, tzinfo=UTC)  # +01:00 converted
    assert (c.unit_price, c.promo, c.extra, c.customer_id) == (
        None, True, (("x_temp", 11.0),), None)
    assert s["generic_small-14"].promo is True  # "yes"
    (ret,) = ds.returns
    assert (ret.key, ret.quantity, ret.occurred_at) == (
        "A1@store1", 1, datetime(2024, 3, 5, tzinfo=UTC))
    times = [r.occurred_at for r in ds.sales]
    assert times == sorted(times)


def test_generic_skus_and_window() -> None:
    top = load_generic(DATA / "generic_small.csv", skus=2)
    # units per key: C3@store2 6, B2@store1 5, A1@store1 3, A1@default 2
    assert {r.key for r in top.sales} == {"C3@store2", "B2@store1"}
    assert top.report.not_selected == 3  # 2 sales + the A1@store1 return
    assert top.returns == [] and top.report.accounted() == 13
    win = load_generic(DATA / "generic_small.csv", start=date(2024, 3, 5), end=date(2024, 3, 6),
                       default_location="shop")
    assert [r.order_id for r in win.sales] == ["generic_small-4"]
    assert len(win.returns) == 1 and win.report.outside_window == 3
    assert win.report.accounted() == 13


def test_generic_missing_column_names_it() -> None:
    with pytest.raises(ValueError, match="'quantity'"):
        load_generic(DATA / "generic_missing_quantity.csv")
    with pytest.raises(ValueError, match="unrecognised CSV header"):
        load(DATA / "generic_missing_quantity.csv")


def test_generic_order_id_column_and_detect(tmp_path: Path) -> None:
    f = tmp_path / "o.csv"
    f.write_text("Timestamp,SKU,Quantity,order_id,customer_id\n2024-01-01T05:00:00Z,X,2,ord-9,c1\n")
    assert detect_format(f) == "generic"
    (r,) = load(f, "generic").sales
    assert (r.order_id, r.customer_id, r.occurred_at) == (
        "ord-9", "c1", datetime(2024, 1, 1, 5, tzinfo=UTC))
    with pytest.raises(ValueError, match="fmt must be"):
        load(f, "parquet")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# periods
# ------------------------------------------------------------------------------------------------
def test_period_floor_hour_day_week() -> None:
    t = datetime(2011, 6, 5, 23, 59, 59, 999_999, tzinfo=UTC)  # a Sunday
    assert period_floor(t, "H") == datetime(2011, 6, 5, 23, tzinfo=UTC)
    assert period_floor(t, "D") == datetime(2011, 6, 5, tzinfo=UTC)
    assert period_floor(t, "W") == datetime(2011, 5, 30, tzinfo=UTC)  # Monday
    monday = datetime(2011, 5, 30, tzinfo=UTC)
    assert period_floor(monday, "W") == monday
    # an aware non-UTC time is floored on the UTC grid: 00:30+01:00 is 23:30 UTC the day before
    from zoneinfo import ZoneInfo
    bst = datetime(2011, 6, 6, 0, 30, tzinfo=ZoneInfo("Europe/London"))
    assert period_floor(bst, "D") == datetime(2011, 6, 5, tzinfo=UTC)
    assert period_floor(bst, "W") == datetime(2011, 5, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        period_floor(datetime(2011, 1, 1), "D")  # noqa: DTZ001
    with pytest.raises(ValueError):
        period_floor(t, "M")  # type: ignore[arg-type]
    assert [period_delta(f) for f in ("H", "D", "W")] == [timedelta(hours=1), timedelta(days=1),
                                                          timedelta(days=7)]
    assert [season_length(f) for f in ("H", "D", "W")] == [24, 7, 52]


def test_period_floor_matches_agents_demand_grid() -> None:
    from agents.demand import epoch, period_start

    t0 = datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    for k in range(0, 400 * 24, 7):
        t = t0 + timedelta(hours=k, minutes=k % 60)
        for f in ("H", "D", "W"):
            assert int(period_floor(t, f).timestamp()) == period_start(f, epoch(t))


def test_demand_matrix_weekly_and_empty() -> None:
    mon = datetime(2024, 1, 1, 12, tzinfo=UTC)  # a Monday
    rows = [SaleRow(mon, "A", "L", 1, None, None, "1", None),
            SaleRow(mon + timedelta(days=6), "A", "L", 2, None, None, "2", None),   # same week
            SaleRow(mon + timedelta(days=15), "B", "L", 4, None, None, "3", None)]  # week 3
    dm = demand_matrix(Dataset(rows, [], CleaningReport(), "x", "generic"), "W")
    assert dm.period_starts == [datetime(2024, 1, d, tzinfo=UTC) for d in (1, 8, 15)]
    assert dm.y.tolist() == [[3.0, 0.0, 0.0], [0.0, 0.0, 4.0]]
    assert dm.first_period.tolist() == [0, 2]
    empty = demand_matrix(Dataset([], [], CleaningReport(), "x", "generic"), "D")
    assert empty.y.shape == (0, 0) and empty.keys == []
