"""Builds the one optional C extension, ``infra._accept`` (the event schemas' compiled fast path).

``make setup`` runs ``python setup.py build_ext --inplace``. Without a C compiler and the Python
headers the build is skipped and the bus uses its pure-Python acceptors (same answers, slower;
``python -m scripts.doctor`` says which one runs). The project itself is not installed as a package.
"""

from setuptools import Extension, setup

setup(
    packages=[],
    ext_modules=[
        Extension("infra._accept", ["infra/_accept.c"], extra_compile_args=["-O2", "-Wall", "-Wextra"]),
    ],
)
