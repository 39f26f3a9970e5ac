"""Multi-host set-up: ``jax.distributed.initialize`` from CLI flags or the environment.

Flags win over environment variables: ``--coordinator`` / ``IMVAE_COORDINATOR`` (or JAX's own
``JAX_COORDINATOR_ADDRESS``), ``--num-processes`` / ``IMVAE_NUM_PROCESSES``, ``--process-id`` /
``IMVAE_PROCESS_ID``. With none of them set the run is single-process and nothing is called.
On CPU the cross-process collectives go through gloo
(``jax_cpu_collectives_implementation``), which makes two local processes a real two-host run.
Must run before anything touches a JAX backend.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class DistributedSpec:
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    @property
    def enabled(self) -> bool:
        return self.coordinator is not None


def _env_int(*names: str) -> int | None:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"environment variable {name}={value!r} is not an integer") from None
    return None


def resolve_spec(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> DistributedSpec:
    """Flags first, then ``IMVAE_*``, then JAX's ``JAX_COORDINATOR_ADDRESS``/``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID``."""
    coordinator = coordinator or os.environ.get("IMVAE_COORDINATOR") or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    if num_processes is None:
        num_processes = _env_int("IMVAE_NUM_PROCESSES", "JAX_NUM_PROCESSES")
    if process_id is None:
        process_id = _env_int("IMVAE_PROCESS_ID", "JAX_PROCESS_ID")
    spec = DistributedSpec(coordinator, num_processes, process_id)
    if spec.enabled and (num_processes is None or process_id is None):
        raise ValueError(
            f"distributed run with coordinator {coordinator!r} needs --num-processes and --process-id "
            "(or IMVAE_NUM_PROCESSES / IMVAE_PROCESS_ID)"
        )
    if spec.enabled and not 0 <= process_id < num_processes:
        raise ValueError(f"--process-id {process_id} is outside [0, {num_processes})")
    if not spec.enabled and (num_processes not in (None, 1)):
        raise ValueError(f"--num-processes {num_processes} needs --coordinator (host:port of process 0)")
    return spec


def initialize(spec: DistributedSpec) -> None:
    """Start the distributed runtime for ``spec`` (no-op when it is single-process)."""
    if not spec.enabled:
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=spec.coordinator, num_processes=spec.num_processes, process_id=spec.process_id
    )

