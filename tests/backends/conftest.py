import shutil

import pytest

# Where a C++ compiler exists (CI installs g++) the kernels must build: a failed build fails these tests.
needs_compiler = pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="no C++ compiler on this machine"
)
