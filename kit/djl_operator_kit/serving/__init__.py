"""Local serving: ``djl-operator-kit serve`` runs a model artifact behind the SageMaker
container contract (``GET /ping``, ``POST /invocations``), calling its ``model.py``
the way DJL Serving's Python engine does, dynamic batching included."""
