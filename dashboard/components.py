"""Small shared view pieces: artifact status badges, missing/error panels, CSV export."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import loading
from dashboard.text import md_code, md_text  # noqa: F401 - re-exported for the tabs
from infra.artifacts import ArtifactResult

DEMO_COMMAND = "python -m scripts.demo"


def status_line(result: ArtifactResult) -> None:
    """One caption: when the artifact was generated, and a STALE badge when it is old."""
    if result.envelope is None:
        return
    gen = result.envelope["generated_at"]
    source = result.envelope.get("source", "?")
    if result.status == "stale":
        st.warning(
            f"STALE: {md_code(result.path.name)} generated {gen} by {md_code(source)}. {result.message}",
            icon=":material/schedule:",
        )
    else:
        age_h = (result.age_s or 0.0) / 3600
        st.caption(f"{md_code(result.path.name)} generated {gen} ({age_h:.1f} h ago) by {md_code(source)}")


def problem_panel(result: ArtifactResult, *, command: str) -> None:
    """Explain a missing/corrupt/wrong-schema artifact and the command that produces it."""
    if result.status == "missing":
        st.info(
            f"**No `{result.path.name}` yet.** This part has nothing to show until the job "
            f"that writes it has run:\n\n```\n{command}\n```",
            icon=":material/info:",
        )
    else:
        st.error(
            f"**{md_code(result.path.name)} cannot be used ({result.status}).** {md_code(result.message)}\n\n"
            f"Re-create it with:\n\n```\n{command}\n```",
            icon=":material/block:",
        )


def require_artifact(name: str, *, command: str, schema_version: int | None = None) -> ArtifactResult | None:
    """Load ``name``; show its status line, or its problem panel and return ``None``.

    Every status but ``ok`` and ``stale`` (missing, corrupt, wrong schema, invalid data or a
    ``generated_at`` in the future) gets the problem panel with the reader's message, which names
    the field and the bad value; the tab then draws nothing from the artifact.
    """
    result = loading.artifact(name)
    if (  # a registered artifact's version is checked by the store; this is for a user's own
        result.usable
        and result.envelope is not None
        and schema_version is not None
        and result.envelope.get("schema_version") != schema_version
    ):
        problem_panel(
            ArtifactResult(
                name,
                "wrong_schema",
                result.path,
                f"{result.path.name} has schema_version {result.envelope.get('schema_version')!r}, "
                f"expected {schema_version}.",
            ),
            command=command,
        )
        return None
    if not result.usable:
        problem_panel(result, command=command)
        return None
    status_line(result)
    return result


def csv_download(df: pd.DataFrame, *, label: str, file_name: str, key: str) -> None:
    """A download button exporting ``df`` as CSV."""
    st.download_button(
        label, df.to_csv(index=False).encode("utf-8"), file_name=file_name, mime="text/csv", key=key
    )


def baked(styler: Any) -> Any:
    """``styler`` with the display text of every missing cell written into the data itself.

    Streamlit's grid draws a missing cell (None, NaN, NaT) as its placeholder, "None", before it
    looks at the Styler's display value (``drawCell`` in Streamlit 1.67's ``DataFrame`` bundle), so
    a Styler's ``na_rep`` ("n/a", "baseline", "never") reaches AppTest but never the page. The
    columns holding a missing cell become text columns; the other cells keep their formats.
    """
    data = styler.data
    missing = data.isna().to_numpy()
    if not missing.any():
        return styler
    funcs = styler._display_funcs  # pandas keeps formats and styles private
    text = data.copy()
    cols = sorted({int(j) for j in missing.nonzero()[1]})
    for j in cols:
        text[text.columns[j]] = text[text.columns[j]].astype(object)
    for i, j in zip(*missing.nonzero(), strict=True):
        text.iat[i, j] = str(funcs[(int(i), int(j))](data.iat[i, j]))
    out = text.style
    out._todo = list(styler._todo)  # cell styles (apply/map), re-run on the same shape
    out._display_funcs.update(funcs)
    for i, j in zip(*missing.nonzero(), strict=True):
        out._display_funcs[(int(i), int(j))] = str
    out.hide_index_ = styler.hide_index_
    out.hide_columns_ = styler.hide_columns_
    return out


def readable(df: pd.DataFrame, *, digits: int = 4) -> Any:
    """``df`` styled for ``st.dataframe``: floats to ``digits`` places, a missing value as "n/a".

    Streamlit prints a NaN cell as "None" (or "nan"), which reads as a bug where a number belongs.
    """
    floats = [c for c in df.columns if pd.api.types.is_float_dtype(df[c])]
    styler = df.style.format(f"{{:,.{digits}f}}", subset=floats, na_rep="n/a")
    others = [c for c in df.columns if c not in floats]
    return styler.format(
        lambda v: "n/a" if v is None or (isinstance(v, float) and v != v) else v, subset=others
    )
