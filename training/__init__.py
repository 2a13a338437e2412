"""Train GAN generators and export them to the project's ONNX contract.

Data flows one way: ``data`` → ``networks`` + ``objectives`` → ``trainer`` → ``export`` → ``models/``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ganserve")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.1.0"

SUPPORTED_IMAGE_SIZES = (16, 32, 64)
SUPPORTED_CHANNELS = (1, 3, 4)
