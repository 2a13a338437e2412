"""What training and serving share, importing neither of them nor torch: the reproducibility contract
(``contract``: seeded noise, labels, uint8 conversion, tensor names, ONNX metadata), PNG encoding and grids
(``imaging``) and atomic file writes (``files``).

Data flows one way — data → ``training`` → export → ``models/`` → ``service`` — and both ends import this
package, never each other (``tests/test_layering.py`` checks it).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ganserve")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
