"""``baked``: what a Styler says for a missing cell is what the browser shows (issue 23)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.elements.lib.pandas_styler_utils import marshall_styler
from streamlit.proto.ArrowData_pb2 import ArrowData

from dashboard.components import baked, readable


def _cells(styler: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The data and display values Streamlit sends for ``styler`` (what the grid receives)."""
    from streamlit import dataframe_util

    proto = ArrowData()
    data = styler.data  # type: ignore[attr-defined]
    proto.data = dataframe_util.convert_pandas_df_to_arrow_bytes(data)
    marshall_styler(proto, styler, "uuid")
    return convert_arrow_bytes_to_pandas_df(proto.data), convert_arrow_bytes_to_pandas_df(
        proto.styler.display_values
    )


def test_missing_cells_carry_their_display_text_and_the_rest_keeps_its_format() -> None:
    df = pd.DataFrame({"delta": [np.nan, 0.12345], "name": ["kelly", None], "n": [1.5, 2.25]})
    styler = readable(df, digits=2).format("{:+.3f}", subset=["delta"], na_rep="baseline")
    styler = styler.apply(lambda r: ["color: grey"] * len(r) if r.name == 1 else [""] * len(r), axis=1)
    raw_before, _ = _cells(styler)
    assert raw_before.isna().to_numpy().sum() == 2  # the grid would draw "None" twice
    out = baked(styler)
    raw, shown = _cells(out)
    assert not raw.isna().to_numpy().any()
    assert raw["delta"].tolist()[0] == "baseline" and raw["name"].tolist()[1] == "n/a"
    assert shown["delta"].tolist() == ["baseline", "+0.123"]
    assert shown["n"].tolist() == ["1.50", "2.25"] and out.data["n"].dtype == np.float64  # untouched column
    html = out.to_html()
    assert "color: grey" in html  # cell styles survive


def test_a_table_without_missing_cells_is_left_as_it_is() -> None:
    styler = readable(pd.DataFrame({"x": [1.0, 2.0]}))
    assert baked(styler) is styler
