"""Fixtures for the adapter tests.

``fake_nvml`` loads a fake ``libnvidia-ml.so.1`` (tests/fixtures/fake_nvml.c, compiled with gcc
once per session) into the real ``pynvml`` in this process, so the NVML reader runs through
pynvml's real ctypes wrappers, struct layouts and error mapping. pynvml's module state (the
loaded library, the function-pointer cache, the init refcount, the error-text cache) is put
back afterwards, so later tests see a driverless machine again. ``fake_nvml_old_driver`` is the
same library built without ``nvmlDeviceGetCurrentClocksEventReasons`` (a driver before 535).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pynvml
import pytest

FAKE_NVML_SOURCE = Path(__file__).resolve().parent.parent / "fixtures" / "fake_nvml.c"


def _build(tmp_path_factory: pytest.TempPathFactory, *defines: str) -> Path:
    """The fake library, built into its own session temp dir (one dir per variant)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: cannot build the fake libnvidia-ml.so.1 (tests/fixtures)")
    target = tmp_path_factory.mktemp("fake_nvml") / "libnvidia-ml.so.1"
    command = [gcc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-pthread", *defines]
    built = subprocess.run(
        [*command, "-o", str(target), str(FAKE_NVML_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"gcc could not build {FAKE_NVML_SOURCE.name}:\n{built.stderr}")
    return target


@pytest.fixture(scope="session")
def fake_nvml_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake library of a current driver."""
    return _build(tmp_path_factory)


@pytest.fixture(scope="session")
def fake_nvml_old_driver_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake library of a driver before 535: no ``…ClocksEventReasons`` symbol."""
    return _build(tmp_path_factory, "-DFAKE_NVML_OLD_DRIVER")


@pytest.fixture
def fake_nvml(fake_nvml_path: Path) -> Iterator[ctypes.CDLL]:
    """The fake library, reset and installed as ``pynvml.nvmlLib``; yields it for its setters."""
    yield from _installed(fake_nvml_path)


@pytest.fixture
def fake_nvml_old_driver(fake_nvml_old_driver_path: Path) -> Iterator[ctypes.CDLL]:
    """As ``fake_nvml``, with the old driver's library."""
    yield from _installed(fake_nvml_old_driver_path)


def _installed(path: Path) -> Iterator[ctypes.CDLL]:
    saved_lib = pynvml.nvmlLib
    saved_pointers = dict(pynvml._nvmlGetFunctionPointer_cache)
    saved_refcount = pynvml._nvmlLib_refcount
    saved_texts = dict(pynvml.NVMLError._errcode_to_string)
    lib = ctypes.CDLL(str(path))
    lib.fake_reset()
    pynvml.nvmlLib = lib
    pynvml._nvmlGetFunctionPointer_cache.clear()
    try:
        yield lib
    finally:
        lib.fake_reset()
        pynvml.nvmlLib = saved_lib
        pynvml._nvmlGetFunctionPointer_cache.clear()
        pynvml._nvmlGetFunctionPointer_cache.update(saved_pointers)
        pynvml._nvmlLib_refcount = saved_refcount
        pynvml.NVMLError._errcode_to_string.clear()
        pynvml.NVMLError._errcode_to_string.update(saved_texts)
