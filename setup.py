"""The compiled part of the log collector; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("collectors.logs._scan", ["collectors/logs/_scan.c"]),
    ],
)
