"""The compiled part of the log collector; everything else is in pyproject.toml.

Optional: without a C compiler the install goes on and the collector reads logs with the
strict Python parsers (collectors/logs/native.py says so once, in the log)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("collectors.logs._scan", ["collectors/logs/_scan.c"], optional=True),
    ],
)
