"""The HTTP ingest gateway: readings in over HTTP, answered 202 only once Kafka holds them.

``python -m web gateway`` runs it (its own process and port, stateless: run as many
replicas as the load needs). :mod:`web.gateway.app` is the application and the order of the
checks; :mod:`web.gateway.body` the body's limits; :mod:`web.gateway.documents` the forms,
the user binding and the event ids; :mod:`web.gateway.publisher` the Kafka side. The
worker remains the one judge of every reading: the gateway only refuses what cannot be a
message at all (size, encoding, JSON, an unknown form) or what the token may not write.
"""
