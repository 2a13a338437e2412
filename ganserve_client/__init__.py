"""A small Python client for a ganserve server: numpy arrays in, server errors out as exceptions.

    from ganserve_client import Client

    with Client("http://127.0.0.1:3000", api_key=None) as client:
        batch = client.generate("digits-cgan", count=16, seed=42, label=7)
        batch.images      # uint8 [16, H, W, C]
        batch.indices     # image indices (start … start+count-1), batch.labels: class per image (or None)
        rows = client.infer("digits-cgan", seeds=[1, 2, 3], indices=[0, 5, 9], labels=[7, 0, 3])
        rows.images       # uint8 [3, H, W, C]: row i is image indices[i] of seeds[i] with labels[i]

A top-level package of its own, not part of ``service``: it imports only httpx, numpy and Pillow (no BentoML,
ONNX Runtime or torch), so an application that calls a server needs none of the server's dependencies. It
installs on its own: ``pip install ./ganserve_client`` (this folder's ``pyproject.toml``).
"""

from ganserve_client.client import Batch, Client, Rows, Walk
from ganserve_client.errors import ServerError

__all__ = ["Batch", "Client", "Rows", "ServerError", "Walk"]
