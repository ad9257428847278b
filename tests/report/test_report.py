"""README tables and plots built from sweep results and TensorBoard event files."""

import json
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from fingerquant.errors import DataError
from fingerquant.report.__main__ import main
from fingerquant.report.losses import pd_share_table, read_loss_terms
from fingerquant.report.plots import plot_bit_widths
from fingerquant.report.runs import load_runs
from fingerquant.report.tables import ablation_table, bit_width_table, writeup_table

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_run(**overrides: object) -> dict:
    run = {
        "task": "thumbs",
        "model": "model1",
        "method": "pdquant",
        "w_bits": 4,
        "a_bits": 4,
        "recon_iters": 2000,
        "dc_iters": 100,
        "lambda_r": 0.1,
        "seed": 0,
        "fp_accuracy": 94.0,
        "quant_accuracy": 93.0,
        "agreement": 95.0,
    }
    run.update(overrides)
    return run


def write_sweep(folder: Path, runs: list[dict]) -> Path:
    for index, run in enumerate(runs):
        cell = folder / f"cell{index}"
        cell.mkdir(parents=True)
        (cell / "results.json").write_text(json.dumps(run))
    (folder / "unfinished").mkdir()
    return folder


def test_writeup_table_places_both_sides() -> None:
    runs = [
        make_run(quant_accuracy=92.5, agreement=96.25),
        make_run(task="fingers", fp_accuracy=32.0, quant_accuracy=30.0, agreement=80.0),
    ]
    lines = writeup_table(runs, "model1").splitlines()

    assert lines[2] == "| FP | | | 91.50 | 94.00 | 48.96 | 32.00 |"
    assert "| 2000 | 100 | 0.1 | 91.09 | 92.50 (96.25) | 43.94 | 30.00 (80.00) |" in lines
    assert "| 20000 | 500 | 0.1 | 84.41 | not run | 10.05 | not run |" in lines
    assert lines[3].startswith("| 20000 |")


def test_writeup_table_adds_settings_of_ours() -> None:
    runs = [make_run(recon_iters=100, dc_iters=500)]
    table = writeup_table(runs, "model1")

    assert "| 100 | 500 | 0.1 |  | 93.00 (95.00) |  | not run |" in table


def test_ablation_table_mean_and_std() -> None:
    runs = [
        make_run(method="rtn", seed=seed, quant_accuracy=accuracy, agreement=90.0)
        for seed, accuracy in enumerate([90.0, 91.0, 92.0])
    ]
    runs += [make_run(method="pdquant", dc_iters=0, seed=seed) for seed in range(2)]
    runs += [make_run(w_bits=2)]
    table = ablation_table(runs, (4, 4))
    row = table.splitlines()[2].split(" | ")

    assert row[:3] == ["| thumbs", "model1", "94.00"]
    assert row[3] == "91.00 ± 1.00 (90.00 ± 0.00)"
    assert row[4] == "not run"
    assert row[7] == "93.00 ± 0.00 (95.00 ± 0.00), 2 of 3 seeds"
    assert row[8] == "not run |"
    assert len(table.splitlines()) == 3


def test_bit_width_table_pairs_methods() -> None:
    runs = [
        make_run(method="rtn", quant_accuracy=90.0),
        make_run(method="pdquant", quant_accuracy=92.0),
        make_run(method="pdquant", w_bits=2, a_bits=2, quant_accuracy=80.0),
        make_run(method="pdquant", seed=1, quant_accuracy=10.0),
        make_run(method="brecq", w_bits=8, a_bits=8),
    ]
    row = bit_width_table(runs).splitlines()[2]

    assert row == "| thumbs | model1 | 94.00 | - / - | 90.00 / 92.00 | - / - | - / - | - / 80.00 |"


def test_load_runs_skips_unfinished_cells(tmp_path: Path) -> None:
    write_sweep(tmp_path, [make_run(), make_run(seed=1)])

    assert [run["seed"] for run in load_runs(tmp_path)] == [0, 1]


def test_load_runs_rejects_run_folder(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(make_run()))

    with pytest.raises(DataError, match="folder of one run; pass the sweep folder"):
        load_runs(tmp_path)


def test_load_runs_rejects_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Sweep folder not found"):
        load_runs(tmp_path / "absent")


def test_bit_width_plot_is_png(tmp_path: Path) -> None:
    runs = [
        make_run(method=method, w_bits=w_bits, a_bits=a_bits, quant_accuracy=80.0 + w_bits)
        for method in ("rtn", "pdquant")
        for w_bits, a_bits in ((8, 8), (4, 4), (2, 4))
    ]
    output = tmp_path / "plots" / "bit_widths.png"
    plot_bit_widths(runs, output)

    assert output.read_bytes().startswith(PNG_SIGNATURE)


def test_bit_width_plot_needs_runs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No finished"):
        plot_bit_widths([make_run(method="brecq")], tmp_path / "plot.png")


def test_loss_terms_from_event_files(tmp_path: Path) -> None:
    writer = SummaryWriter(log_dir=str(tmp_path))
    for step in range(100, 110):
        writer.add_scalar("recon/features.conv1/reg", 1.0 / step, step)
        writer.add_scalar("recon/features.conv1/lr_alpha", 0.001, step)
    writer.add_scalar("dc/features.conv1/mean", 2.0, 0)
    writer.add_scalar("recon/classifier.fc/pd", 0.5, 300)
    writer.close()
    terms = read_loss_terms(tmp_path)

    assert sorted(terms) == ["classifier.fc", "features.conv1"]
    assert list(terms["features.conv1"]) == ["reg"]
    iterations, values = terms["features.conv1"]["reg"]
    assert iterations == list(range(10))
    assert values[0] == pytest.approx(0.01)
    assert terms["classifier.fc"]["pd"] == ([0], [0.5])


def test_pd_share_averages_last_iterations(tmp_path: Path) -> None:
    writer = SummaryWriter(log_dir=str(tmp_path))
    for iteration in range(0, 1000, 10):
        late = iteration >= 900
        writer.add_scalar("recon/features.conv1/reg", 3.0 if late else 100.0, 500 + iteration)
        writer.add_scalar("recon/features.conv1/pd", 0.1 if late else 9.0, 500 + iteration)
        writer.add_scalar("recon/features.conv1/round", 2.0, 500 + iteration)
    writer.close()
    (tmp_path / "results.json").write_text(json.dumps({"lambda_r": 0.1}))
    row = pd_share_table([tmp_path], last_iters=100).splitlines()[2]

    assert row == f"| {tmp_path.name} | features.conv1 | 3 | 1 | 25.00 | 2 |"


def test_pd_share_rejects_empty_window(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="last_iters must be at least 1, got 0"):
        pd_share_table([tmp_path], last_iters=0)


def test_loss_terms_need_run_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="Run folder not found"):
        read_loss_terms(tmp_path / "absent")


def test_loss_terms_need_event_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No TensorBoard event files"):
        read_loss_terms(tmp_path)


def test_cli_writes_ablation_page(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", [make_run(method="rtn"), make_run(w_bits=2)])
    output = tmp_path / "ablation.md"

    assert main(["ablation", str(sweep), "--output", str(output)]) == 0
    page = output.read_text()
    assert page.index("### W4A4") < page.index("### W2A4")


def test_cli_writes_into_sweep_by_default(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "sweep", [make_run(method="rtn"), make_run()])

    assert main(["bit_widths", str(sweep)]) == 0
    assert (sweep / "bit_widths.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "| thumbs | model1 |" in (sweep / "bit_widths.md").read_text()


def test_cli_reports_missing_sweep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    output = tmp_path / "writeup.md"

    assert main(["writeup", str(tmp_path / "absent"), "--output", str(output)]) == 1
    assert "Sweep folder not found" in capsys.readouterr().out
    assert not output.exists()
