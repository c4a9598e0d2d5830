"""Gateway access logs into per-minute rollups: files (rotations and all) and pod logs.

``LogCollector(plan=..., engine=...).collect(now=...)`` makes one pass over every log
source of the plan.  The parts: :mod:`.formats` (JSON, nginx and its templates,
HAProxy, Envoy), :mod:`.mapping` (a line to its service and variant), :mod:`.ingest`
(blocks to rollups in memory), :mod:`.tail` (files, rotations, checkpoints) and
:mod:`.podlogs` (the Kubernetes API)."""

from collectors.logs.collector import LogCollector

__all__ = ["LogCollector"]
