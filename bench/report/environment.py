"""The report's Environment section: the machine, the run's settings and each framework's exact version and
interpreter, from a run's manifest."""
from __future__ import annotations

from bench.report.content import MISSING, Run


def environment_rows(run: Run) -> list[tuple[str, str]]:
    """The run's machine and settings as (label, text) pairs."""
    manifest = run.manifest
    machine = manifest.get("machine") or {}
    gpus = "; ".join(f"{g.get('name')} (driver {g.get('driver')}, CUDA {g.get('cuda')}, "
                     f"{g.get('memory_total_mib')} MiB)" for g in machine.get("gpus") or []) or "none"
    ram = machine.get("ram_bytes")
    settings = manifest.get("settings") or {}
    datasets = "; ".join(f"{task}: {d.get('dataset')} ({d.get('folder') or 'synthetic, generated'})"
                         for task, d in (manifest.get("datasets") or {}).items())
    return [
        ("command", str(manifest.get("command", MISSING))),
        ("spec version / seed", f"{manifest.get('spec_version', MISSING)} / {manifest.get('seed', MISSING)}"),
        ("profile", f"{settings.get('profile', MISSING)}; epochs {settings.get('epochs') or 'per profile'}; "
                    f"repeats {settings.get('repeats', MISSING)}; modes {', '.join(settings.get('modes') or [])}"),
        ("datasets", datasets or MISSING),
        ("OS", str(machine.get("os", MISSING))),
        ("CPU", f"{machine.get('cpu_model', MISSING)}, {machine.get('cpu_cores', MISSING)} cores"),
        ("RAM", f"{ram / 2**30:.1f} GiB" if ram else MISSING),
        ("GPUs", gpus),
        ("harness Python", str(machine.get("python", MISSING))),
    ]


def framework_rows(run: Run) -> list[dict]:
    return [{"framework": name, "version": info.get("version") or MISSING, "python": info.get("python") or MISSING,
             "origin": info.get("origin") or MISSING, "error": info.get("error") or ""}
            for name, info in (run.manifest.get("frameworks") or {}).items()]


def framework_settings(records: list[dict]) -> dict[str, str]:
    """Each framework's recorded settings (threads, compiler, ...), from its first successful cell."""
    found = {}
    for record in records:
        if record["status"] == "ok" and record["framework"] not in found:
            settings = record.get("framework_settings") or {}
            found[record["framework"]] = ", ".join(f"{key}={value}" for key, value in settings.items())
    return found
