"""From a DjlEndpoint spec to what SageMaker needs.

- :mod:`.render`: serving.properties, requirements.txt and the model template's files.
- :mod:`.package`: a byte-for-byte reproducible model.tar.gz and its content-addressed S3 key.
- :mod:`.upload`: idempotent upload (SSE-KMS when asked) and cleanup, given a boto3 S3 client.
- :mod:`.images`: DJL container image URIs from the SageMaker SDK's tables.
- :mod:`.requests`: the CreateModel / CreateEndpointConfig / CreateEndpoint requests.
- :mod:`.cli`: ``djl-operator render`` and ``djl-operator package``.
"""
