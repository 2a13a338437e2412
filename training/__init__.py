"""Train GAN generators and export them to the project's ONNX contract.

Data flows one way: ``data`` → ``networks`` + ``objectives`` → ``trainer`` → ``export`` → ``models/``.
"""

from gancore import __version__

# The sizes and channels belong to the contract the service also checks: one list, there.
from gancore.contract import SUPPORTED_CHANNELS, SUPPORTED_IMAGE_SIZES

__all__ = ["SUPPORTED_CHANNELS", "SUPPORTED_IMAGE_SIZES", "__version__"]
