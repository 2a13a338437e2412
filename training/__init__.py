"""Train GAN generators and export them to the project's ONNX contract.

Data flows one way: ``data`` → ``networks`` + ``objectives`` → ``trainer`` → ``export`` → ``models/``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ganserve")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0"

# The sizes and channels belong to the contract the service also checks: one list, there.
from gancore.contract import SUPPORTED_CHANNELS, SUPPORTED_IMAGE_SIZES  # noqa: E402

__all__ = ["SUPPORTED_CHANNELS", "SUPPORTED_IMAGE_SIZES", "__version__"]
