"""Training data: built-in sets, image folders, the decoded-image cache and the per-batch loader.

Images are held once, as uint8 [N, H, W, C] (memory-mapped from the cache for folders and emoji), and
converted to float per batch on the training device by :mod:`training.data.loader` (which imports torch;
the rest of the package does not, so worker processes start light).

- :mod:`~training.data.builtin`: digits, mnist, fashion-mnist
- :mod:`~training.data.emoji`: Noto Emoji from the npm package
- :mod:`~training.data.folders`: class sub-folders or a plain folder
- :mod:`~training.data.images`: one file → a square uint8 array (padding, premultiplied resize)
- :mod:`~training.data.cache`: decode once into ``.npy``, memory-map afterwards
- :mod:`~training.data.load`: a spec string → a data set
"""

from training.data.builtin import IDX_SOURCES, _download, read_idx
from training.data.dataset import DatasetError, ImageDataset, default_data_dir
from training.data.load import SPECS, load_dataset

__all__ = [
    "IDX_SOURCES",
    "SPECS",
    "DatasetError",
    "ImageDataset",
    "_download",
    "default_data_dir",
    "load_dataset",
    "read_idx",
]
