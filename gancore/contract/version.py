"""The contract version: which noise, label and pixel derivation a generator's images are defined by.

Image *i* of (model, seed, label) is ``to_uint8(G(latent(seed, i), label_or_drawn(seed, i)))``. The weights
are the model's; everything else in that expression belongs to this contract. Any change that alters a
single output byte for the same weights (the noise or label derivation, the float → uint8 rounding, the
tensor names or the metadata a service needs) is a new contract version. A service refuses to serve a
model that names a version it does not implement, rather than silently serve different images.
"""

from __future__ import annotations

CONTRACT_VERSION = 1
