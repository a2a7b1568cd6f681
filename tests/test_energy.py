"""Energy from the device's own counters: RAPL's wrap added back, per-phase sums, per-sample figures; and, where no
counter is readable (this machine: a virtual machine), null with the reason, never 0."""
from bench.energy import EnergyMeter
from bench.metrics import energy_figures
from bench.sampler import Energy
from frameworks.loop import LATENCY_CALLS, LATENCY_WARMUP_CALLS


def _rapl(folder, packages: dict[str, int], wrap: int = 1_000_000):
    for name, value in packages.items():
        domain = folder / f"intel-rapl:{name}"
        domain.mkdir(parents=True, exist_ok=True)
        (domain / "energy_uj").write_text(str(value))
        (domain / "max_energy_range_uj").write_text(str(wrap))


def test_rapl_packages_are_summed_and_a_wrap_is_added_back(tmp_path):
    _rapl(tmp_path, {"0": 900_000, "1": 100_000, "0:0": 5})  # two packages; "0:0" is a core sub-domain, left out
    meter = EnergyMeter("cpu", powercap=tmp_path)
    assert meter.reason is None and "2 domain(s)" in meter.source and meter.joules == 0.0
    _rapl(tmp_path, {"0": 50_000, "1": 400_000})  # package 0 wrapped at 1 J: 0.15 J; package 1: 0.3 J
    assert abs(meter.update() - 0.45) < 1e-9
    _rapl(tmp_path, {"0": 150_000, "1": 400_000})
    assert abs(meter.update() - 0.55) < 1e-9


def test_no_counter_is_null_with_the_reason(tmp_path):
    meter = EnergyMeter("cpu", powercap=tmp_path / "absent")
    assert meter.joules is None and meter.update() is None and "no RAPL energy counter" in meter.reason
    assert "NVML unavailable" in EnergyMeter("cuda", nvml_handles=None).reason
    figures = energy_figures(Energy(None, None, meter.reason), trained_samples=1000)
    assert figures["train_energy_j_per_sample"] is None and figures["inference_energy_j_per_1000"] is None
    assert figures["energy_reason"] == meter.reason


def test_energy_per_training_sample_and_per_thousand_inferences():
    figures = energy_figures(Energy({"train": 50.0, "eval": 9.0, "inference": 2.1}, "RAPL", None), 10_000)
    assert figures["train_energy_j_per_sample"] == 50.0 / 10_000  # evaluation's 9 J are not training's
    assert abs(figures["inference_energy_j_per_1000"] - 1000 * 2.1 / (LATENCY_CALLS + LATENCY_WARMUP_CALLS)) < 1e-12
    assert figures["energy_source"] == "RAPL" and figures["energy_reason"] is None


def test_a_cell_on_this_machine_says_why_it_has_no_energy(smoke_run):
    for record in smoke_run["records"]["pytorch"]:
        metrics = record["metrics"]
        if metrics["energy_source"] is None:  # no readable counter here: null, with why
            assert metrics["train_energy_j_per_sample"] is None and metrics["energy_reason"]
        else:  # a machine with RAPL: a positive figure, named
            assert metrics["train_energy_j_per_sample"] > 0 and metrics["inference_energy_j_per_1000"] > 0
