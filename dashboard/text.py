"""User-supplied strings (symbols, routes, file names, run ids) shown as text, never as markdown."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&])")


def md_text(text: object) -> str:
    """``text`` with every markdown metacharacter backslash-escaped, for user-supplied strings
    (symbols, routes, file names, run ids) inside ``st.markdown``/``st.caption``/``st.info``.

    Escaping ``[``, ``]``, ``(``, ``)`` and ``!`` stops link and image syntax (a symbol named
    ``![x](http://evil)`` would otherwise make the reader's browser fetch that URL); ``:`` stops
    emoji/icon shortcodes and bare-URL autolinks; ``$`` stops LaTeX; ``<``/``&`` stop HTML entities.

    >>> md_text("![x](http://e.vil/a.png)")
    '\\\\!\\\\[x\\\\]\\\\(http\\\\://e\\\\.vil/a\\\\.png\\\\)'
    """
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def md_code(text: object) -> str:
    """``text`` as an inline code span (markdown inside a code span is not rendered)."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"
