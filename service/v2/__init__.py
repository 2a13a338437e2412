"""The Open Inference Protocol ("V2", as KServe, Triton and MLServer speak it) over the service's models.

- ``codec``: infer request and response bodies, JSON and the binary tensor extension.
- ``rows``: a request's inputs (per-row seed, index and label, or z) → the generator's rows; model metadata.
- ``routes``: the ASGI middleware that answers every path under ``/v2``.
- ``openapi``: the routes' part of the service's OpenAPI document.
"""
