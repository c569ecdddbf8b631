"""Client and gateway behaviour the simulator assumes (ours, stated once; Envoy-like, REFERENCE.md).

- The edge notices a dead zone after ``ZONE_DETECTION_S`` (three failed 1 s health checks plus
  propagation); until then it still sends that zone its share of requests.
- An attempt to a dead or unreachable instance fails after ``ATTEMPT_TIMEOUT_S`` (a power loss sends
  no reset, so only a timeout tells); a database that is down refuses at once (``REFUSED_S``).
- Every step is retried once (reads are idempotent; writes carry an idempotency key) after a
  jittered backoff, in another zone when there is one.
- The phone gives up after ``CLIENT_TIMEOUT_S``; the request counts as an error with that latency.
- A retry goes to another zone that answers; within a zone each pod gets an even random share of
  the requests (Envoy's least-request balancing would spread them a little better: the waits
  modelled are an upper bound of that).
- A service deployed in some regions only is called across regions from the others.
- A database that is down refuses writes at once (no client waits for the promotion).
"""

ZONE_DETECTION_S = 5.0
ATTEMPT_TIMEOUT_S = 2.0
REFUSED_S = 0.01
RETRIES = 1
BACKOFF_S = (0.05, 0.15)
CLIENT_TIMEOUT_S = 10.0
DEFAULT_STARTUP = {"dist": "lognormal", "mean": 3.0, "cv": 0.3}
"""Start-up delay of instances of services without an autoscaling rule (pod start, no image pull)."""
