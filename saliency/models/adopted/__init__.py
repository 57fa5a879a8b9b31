"""Adopted models (``saliency adopt``): ``sources`` reads the formats, ``graph`` cuts the
graph, ``net`` is the :class:`AdoptedNet`, ``record`` builds it and its record.

Torch-free: the architecture name and the CAM-readiness rule, read by the checkpoint and
by the run reader alike.
"""

from __future__ import annotations

ARCH = "adopted"  # model.arch of an adopted checkpoint


def cam_refusal(record: dict | None) -> str | None:
    """Why ``cam`` does not apply to an adopted model (``record``: its adoption record, as
    in the checkpoint and ``RUN/model/adopted.json``); None when it does, or when the model
    is not an adopted one (``record`` None): a trained CamNet is CAM-ready by construction."""
    if record is None or record["cam_ready"]:
        return None
    return str(record["cam_reason"])
