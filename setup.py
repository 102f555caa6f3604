"""The compiled parts of lookalike: the exact Hamming top-k kernel (lookalike/index/_hamming.c) and the PNG
row reducer behind the large-PNG decode (lookalike/images/_pngreduce.c).

Everything else is declared in pyproject.toml; setuptools builds this extension with the system's C compiler
on ``pip install`` (editable or not). No -march flags: the module picks its POPCNT copy at import.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "lookalike.index._hamming",
            sources=["lookalike/index/_hamming.c"],
            extra_compile_args=["-O3", "-std=c11", "-pthread", "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
                                "-Werror=incompatible-pointer-types"],
            extra_link_args=["-pthread"],
        ),
        Extension(
            "lookalike.images._pngreduce",
            sources=["lookalike/images/_pngreduce.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        ),
    ]
)
