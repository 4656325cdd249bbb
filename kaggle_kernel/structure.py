"""Which instruments move together, by name: each one's class benchmark, exchange peers and related metal.

These maps feed the structural features (features.py): returns net of the class benchmark, moves
relative to exchange peers, and a US metal producer's lag behind its metal. They are facts about
the real instruments (an energy stock moves with the energy ETF), so they hold for the competition
and for the synthetic market alike.
"""

from __future__ import annotations

EQUITY = "US_Stock_VT_adj_close"
ENERGY = "BP COP CVE CVX DVN EOG HES MPC OXY SHEL XOM XLE BKR HAL OIH SLB ENB KMI OKE TRGP WMB".split()
BONDS = "SPTL VGLT IEF VGIT TIP AGG BND MBB BNDX LQD VCIT SPIB EMB SHY VGSH BSV VCSH IGSB".split()
PRECIOUS = "GLD IAU SLV GDX GDXJ NUGT AEM AG FNV GOLD HL KGC NEM PAAS WPM".split()
COPPER_MINERS = "FCX SCCO TECK RIO VALE".split()
RELATED_METAL = {
    **dict.fromkeys(COPPER_MINERS, "LME_CA_Close"),
    **dict.fromkeys("CLF NUE STLD X".split(), "LME_ZS_Close"),
    **dict.fromkeys("ALB XLB LYB".split(), "LME_AH_Close"),
}


def ticker(column: str) -> str | None:
    """`XOM` for `US_Stock_XOM_adj_close`; None for anything that is not a US stock close."""
    if column.startswith("US_Stock_") and column.endswith("_adj_close"):
        return column.removeprefix("US_Stock_").removesuffix("_adj_close")
    return None


def class_benchmark(column: str) -> str:
    """The series that explains most of an instrument's moves: its sector ETF, gold, copper, the dollar."""
    if column.startswith("FX_"):
        return "FX_EURUSD"
    tk = ticker(column)
    if tk in ENERGY:
        return "US_Stock_XLE_adj_close"
    if tk in BONDS:
        return "US_Stock_IEF_adj_close"
    if tk in PRECIOUS:
        return "JPX_Gold_Standard_Futures_Close"
    if tk in COPPER_MINERS:
        return "LME_CA_Close"
    return EQUITY


def has_residual(column: str) -> bool:
    """US stocks and FX pairs are measured net of their benchmark; metals and futures are not."""
    return column != class_benchmark(column) and (column.startswith(("US_Stock_", "FX_")))


def peer_group(column: str) -> str | None:
    """Exchange peers whose relative moves revert: the LME metals; JPX gold and platinum."""
    if column.startswith("LME_"):
        return "LME"
    if column.startswith("JPX_") and ("_Gold_" in column or "_Platinum_" in column):
        return "JPX"
    return None


def related_metal(column: str) -> str | None:
    """The LME metal a US producer follows with a lag (copper miners, steel makers, aluminium users)."""
    return RELATED_METAL.get(ticker(column) or "")


ASSET_CLASSES = ("LME", "JPX", "FX", "US_energy", "US_bonds", "US_precious", "US_copper", "US_other")


def asset_class(column: str) -> int:
    """The instrument's class (index into ASSET_CLASSES): its exchange, and for US stocks its benchmark group."""
    if column.startswith("LME_"):
        return 0
    if column.startswith("JPX_"):
        return 1
    if column.startswith("FX_"):
        return 2
    bench = class_benchmark(column)
    groups = {
        "US_Stock_XLE_adj_close": 3,
        "US_Stock_IEF_adj_close": 4,
        "JPX_Gold_Standard_Futures_Close": 5,
        "LME_CA_Close": 6,
    }
    return groups.get(bench, 7)
