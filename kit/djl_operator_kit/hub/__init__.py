"""A local Hugging Face Hub: the endpoints ``huggingface_hub`` (``HF_ENDPOINT``) and the operator use.

See :mod:`djl_operator_kit.hub.server`.
"""

from .server import LocalHub, Synthetic

__all__ = ["LocalHub", "Synthetic"]
