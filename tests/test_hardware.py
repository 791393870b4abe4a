"""The hardware catalog: every entry is complete and in the right units, lookups fail helpfully,
and this machine's entry converts calibrate's units right."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest

from minfer.errors import InvalidInputError
from minfer.perf.hardware import CATALOG, DTYPES, KINDS, THIS_MACHINE, Hardware, get_hardware, this_machine

ENTRIES = list(CATALOG.values())
IDS = list(CATALOG)
CEILINGS = SimpleNamespace(peak_gflops=150.0, bandwidth_gbs=60.0)  # a stand-in for Ceilings


def test_catalog_has_the_required_chips():
    assert {"h100-sxm", "h200-sxm", "mi300x", "tpu-v4", "groq-lpu"} <= set(CATALOG)
    assert any(hw.kind == "cpu" for hw in ENTRIES)  # a laptop CPU to compare this machine with
    assert THIS_MACHINE not in CATALOG  # measured, never a static entry


@pytest.mark.parametrize("hw", ENTRIES, ids=IDS)
def test_entry_is_complete(hw: Hardware):
    assert hw.name == hw.name.lower() and CATALOG[hw.name] is hw
    assert hw.label and hw.kind in KINDS
    assert hw.bandwidth_gbs > 0 and hw.memory_gb > 0 and hw.price_per_hour > 0
    assert hw.power_w is None or hw.power_w > 0
    if hw.power_w is None:
        assert "unpublished" in hw.notes
    assert hw.sources and all(isinstance(s, str) and s for s in hw.sources)
    assert "Price:" in hw.notes  # every assumed price states its basis


@pytest.mark.parametrize("hw", ENTRIES, ids=IDS)
def test_peaks_are_positive_and_keyed_by_known_dtypes(hw: Hardware):
    assert set(hw.peak_tflops) <= set(DTYPES)
    assert all(v > 0 and math.isfinite(v) for v in hw.peak_tflops.values())
    # a float matmul rate to project with: Groq publishes only fp16, the TPU only bf16
    assert {"float32", "bfloat16", "float16"} & set(hw.peak_tflops)


@pytest.mark.parametrize("hw", ENTRIES, ids=IDS)
def test_to_dict_is_json_ready_and_complete(hw: Hardware):
    d = json.loads(json.dumps(hw.to_dict()))
    assert d["name"] == hw.name and d["peak_tflops"] == hw.peak_tflops
    assert d["sources"] == list(hw.sources)


def test_peak_flops_converts_tflops_to_flops():
    h100 = CATALOG["h100-sxm"]  # datasheet: 1,979 TFLOPS BF16 with sparsity -> 989.5 dense
    assert h100.peak_flops("bfloat16") == pytest.approx(989.5e12)
    assert h100.peak_flops("float32") == pytest.approx(67e12)


def test_dense_not_sparse_peaks():
    # the sparse figures are the datasheets' headline numbers; the catalog must hold half of them
    assert CATALOG["h100-sxm"].peak_tflops["bfloat16"] == pytest.approx(1979 / 2)
    assert CATALOG["mi300x"].peak_tflops["bfloat16"] == pytest.approx(2614.9 / 2, rel=1e-4)
    assert CATALOG["l4"].peak_tflops["bfloat16"] == pytest.approx(242 / 2)


def test_h100_bf16_ridge_point_is_plausible():
    h100 = CATALOG["h100-sxm"]
    ridge = h100.peak_flops("bfloat16") / (h100.bandwidth_gbs * 1e9)  # FLOP per byte
    assert 100 < ridge < 1000  # ~295: decode (~1-2 FLOP/byte) is deeply memory-bound here


def test_laptop_cpu_peak_is_the_worked_out_product():
    cpu = CATALOG["ryzen-7840u"]
    assert cpu.peak_flops("float32") == pytest.approx(8 * 2 * 8 * 2 * 5.1e9)  # 1,305.6 GFLOPS
    assert cpu.bandwidth_gbs == pytest.approx(120.0)  # LPDDR5x-7500 x 16 bytes


def test_groq_memory_is_on_chip_sram():
    groq = CATALOG["groq-lpu"]
    assert groq.memory_gb == pytest.approx(0.23) and groq.bandwidth_gbs == pytest.approx(80_000)
    assert "230 MB" in groq.notes


@pytest.mark.parametrize("name", ["h100-sxm", "H100-SXM", "  Mi300X "])
def test_lookup_ignores_case_and_spaces(name):
    assert get_hardware(name) is CATALOG[name.strip().lower()]


def test_unknown_name_lists_the_known_names():
    with pytest.raises(InvalidInputError) as e:
        get_hardware("h900")
    msg = str(e.value)
    assert "'h900'" in msg and all(n in msg for n in CATALOG) and THIS_MACHINE in msg


def test_missing_dtype_names_chip_dtype_and_what_it_has():
    with pytest.raises(InvalidInputError) as e:
        CATALOG["tpu-v4"].peak_flops("float32")
    msg = str(e.value)
    assert "tpu-v4" in msg and "'float32'" in msg and "bfloat16" in msg and "int8" in msg


def test_this_machine_needs_ceilings():
    with pytest.raises(InvalidInputError, match="minfer calibrate"):
        get_hardware("this-machine")


def test_this_machine_converts_units():
    hw = get_hardware("This-Machine", ceilings=CEILINGS)
    assert hw.name == THIS_MACHINE and hw.label == "this machine (measured)" and hw.kind == "cpu"
    assert hw.peak_tflops == {"float32": pytest.approx(0.15)}  # 150 GFLOP/s = 0.15 TFLOPS
    assert hw.peak_flops("float32") == pytest.approx(150e9)
    assert hw.bandwidth_gbs == pytest.approx(60.0)  # GB/s stays GB/s
    assert hw.power_w == pytest.approx(2 * 400 / 96) and hw.price_per_hour > 0
    assert hw.sources and "Price:" in hw.notes


def test_this_machine_reads_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684092 kB\nMemFree:  1000 kB\n")
    assert this_machine(CEILINGS, meminfo).memory_gb == pytest.approx(24684092 * 1024 / 1e9)
    assert this_machine(CEILINGS, tmp_path / "missing").memory_gb == 24.0


@pytest.mark.parametrize(
    "bad",
    [
        SimpleNamespace(bandwidth_gbs=60.0),  # no peak_gflops at all
        SimpleNamespace(peak_gflops=0.0, bandwidth_gbs=60.0),
        SimpleNamespace(peak_gflops=150.0, bandwidth_gbs=float("nan")),
        SimpleNamespace(peak_gflops="150", bandwidth_gbs=60.0),
    ],
)
def test_this_machine_rejects_bad_ceilings(bad):
    with pytest.raises(InvalidInputError, match="minfer calibrate"):
        this_machine(bad)


def test_the_catalogue_is_a_data_file_checked_as_it_is_read(tmp_path):
    from minfer.errors import InvalidInputError
    from minfer.perf.hardware import CATALOG_FILE, load_catalog

    assert load_catalog(CATALOG_FILE) == CATALOG
    text = CATALOG_FILE.read_text()
    (tmp_path / "bad.toml").write_text(text.replace('kind = "gpu"', 'kind = "fpga"', 1))
    with pytest.raises(InvalidInputError, match="h100-sxm.*kind 'fpga'"):
        load_catalog(tmp_path / "bad.toml")
    both = text.replace("price_per_hour = 2.99", "price_per_hour = 2.99\npurchase_usd = 1.0")
    (tmp_path / "both.toml").write_text(both)
    with pytest.raises(InvalidInputError, match="price_per_hour, or purchase_usd"):
        load_catalog(tmp_path / "both.toml")
    groq = CATALOG["groq-lpu"]  # bought, not rented: the price is worked out from the purchase
    assert groq.price_per_hour == pytest.approx(20_625 / (3 * 24 * 365) + 0.300 * 0.15)
